"""``mmmask.apis.train.main(argv)`` for each ``{name: argv}`` of the JSON
argument, in turn, in this one process; prints ``RESULTS {name: dict(code,
stdout, stderr)}`` (tests/helpers.py: ``train_in_one_process``).

mmengine names a run's logger after the second it starts in, and
``MMLogger.get_instance`` hands a second run of the same name the first
one's logger (and log file): each run starts in a later second than the
one the previous run ended in."""
import contextlib, io, json, sys, time, traceback

from mmmask.apis import train
results = {}
ended = 0
for name, argv in json.loads(sys.argv[1]).items():
    while int(time.time()) <= ended:
        time.sleep(0.05)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train.main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException:
            traceback.print_exc()
            code = 'raised'
    ended = int(time.time())
    results[name] = dict(code=code, stdout=out.getvalue(),
                         stderr=err.getvalue())
print('RESULTS ' + json.dumps(results))
