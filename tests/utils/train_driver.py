"""``mmmask.apis.train.main(argv)`` for each ``{name: argv}`` of the JSON
argument, in turn, in this one process; prints ``RESULTS {name: dict(code,
stdout, stderr)}`` (tests/helpers.py: ``train_in_one_process``). Each
run gets its own logger and log file without help: ``build_runner`` builds
each runner of a process in a later second than the one before."""
import contextlib, io, json, sys, traceback

from mmmask.apis import train
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train.main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException:
            traceback.print_exc()
            code = 'raised'
    results[name] = dict(code=code, stdout=out.getvalue(),
                         stderr=err.getvalue())
print('RESULTS ' + json.dumps(results))
