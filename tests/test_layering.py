"""The package's layering, read from the source with ``ast`` (nothing is
imported): ``mmmask/models`` imports nothing of ``mmmask.engine`` or
``mmmask.apis`` (data flows config -> apis -> engine -> models, never
back), the launchers in ``tools/`` import the package normally, and no
file of ``tools/``, ``tests/`` or ``mmmask/`` loads code by its path."""
import ast
import glob
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _py_files(folder):
    return sorted(glob.glob(osp.join(ROOT, folder, '**', '*.py'),
                            recursive=True))


def _module_name(path):
    rel = osp.relpath(path, ROOT)[:-3].split(osp.sep)
    return '.'.join(rel[:-1] if rel[-1] == '__init__' else rel)


def imported_modules(path):
    """Every module ``path`` imports, relative imports resolved, with
    ``from X import y`` also giving ``X.y`` (y may be a submodule)."""
    tree = ast.parse(open(path).read(), path)
    package = _module_name(path).split('.')
    if not path.endswith('__init__.py'):
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level \
                else []
            module = '.'.join(base + ([node.module] if node.module else []))
            yield module
            yield from (f'{module}.{alias.name}' for alias in node.names)


def _under(name, package):
    return name == package or name.startswith(package + '.')


def test_imported_modules_resolves_relative_imports(tmp_path):
    path = osp.join(ROOT, 'mmmask', 'models', 'algorithms', 'densecl.py')
    names = set(imported_modules(path))
    assert any(_under(n, 'mmmask.models') for n in names)
    assert all(not n.startswith('.') for n in names)


def test_models_never_import_engine_or_apis():
    offenders = [(osp.relpath(p, ROOT), name)
                 for p in _py_files('mmmask/models')
                 for name in imported_modules(p)
                 if _under(name, 'mmmask.engine')
                 or _under(name, 'mmmask.apis')]
    assert offenders == []


def test_engine_never_imports_apis():
    offenders = [(osp.relpath(p, ROOT), name)
                 for p in _py_files('mmmask/engine')
                 for name in imported_modules(p)
                 if _under(name, 'mmmask.apis')]
    assert offenders == []


def test_launchers_import_the_package():
    for tool, api in (('tools/train.py', 'mmmask.apis.train'),
                      ('tools/benchmarks/downstream_train.py',
                       'mmmask.apis.downstream'),
                      ('tools/benchmarks/mmdetection/train.py',
                       'mmmask.apis.downstream'),
                      ('tools/benchmarks/mmsegmentation/train.py',
                       'mmmask.apis.downstream')):
        assert api in set(imported_modules(osp.join(ROOT, tool))), tool


def test_no_code_is_loaded_by_its_path():
    banned = ('spec_from_file_location', 'SourceFileLoader', 'run_path')
    offenders = []
    for folder in ('mmmask', 'tools', 'tests'):
        for path in _py_files(folder):
            if osp.samefile(path, __file__):
                continue
            tree = ast.parse(open(path).read(), path)
            offenders += [
                (osp.relpath(path, ROOT), node.attr if isinstance(
                    node, ast.Attribute) else node.id)
                for node in ast.walk(tree)
                if (isinstance(node, ast.Attribute) and node.attr in banned)
                or (isinstance(node, ast.Name) and node.id in banned)]
    assert offenders == []
