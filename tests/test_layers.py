"The layers of salt_nb (README, Architecture): a module imports only from its own layer or the ones below."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/'salt_nb'
LAYERS = [
    {'files', 'data', 'seismic', 'metrics', 'losses', 'geometry', 'blocks', 'encoders', 'models'},   # 1 core
    {'runs', 'augment', 'synth', 'synth_survey', 'eda', 'mosaic_match', 'mosaic', 'postprocess'},     # 2 building blocks
    {'dataloaders', 'callbacks', 'distrib', 'predict', 'probs', 'deploy', 'sections'},                # 3 pieces
    {'learner', 'schedules', 'budget'},                                                                # 4 training
    {'train', 'inference', 'analysis', 'section_cli'},                                                 # 5 jobs
    {'demo', 'viewers', 'mosaic_viewer', 'section_viewer'},                                            # 6 commands and widgets on top
]
LAYER = {m: k for k, ms in enumerate(LAYERS) for m in ms}

def salt_imports(source: str) -> set:
    "The salt_nb modules a module's source imports (`from .x import`, `from salt_nb.x import`, `import salt_nb.x`)."
    out = set()
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.ImportFrom) and n.module and (n.level == 1 or n.module.startswith('salt_nb.')):
            out.add(n.module.removeprefix('salt_nb.').split('.')[0])
        elif isinstance(n, ast.ImportFrom) and n.level == 1 and n.module is None:
            out.update(a.name for a in n.names)
        elif isinstance(n, ast.Import):
            out.update(a.name.split('.')[1] for a in n.names if a.name.startswith('salt_nb.'))
    return out

def violations(sources: dict) -> list:
    "(module, imported module) pairs where a lower layer imports a higher one, or a module has no layer."
    bad = [(m, '(no layer)') for m in sources if m not in LAYER]
    for m, src in sources.items():
        bad += [(m, i) for i in sorted(salt_imports(src)) if m in LAYER and LAYER.get(i, -1) > LAYER[m]]
    return bad

def test_salt_imports():
    src = "from .data import x\nfrom salt_nb.runs import y\nimport salt_nb.models, os\nfrom . import eda\nfrom fastai.learner import L"
    assert salt_imports(src) == {'data', 'runs', 'models', 'eda'}

def test_violations_found():
    assert violations({'data': 'from .train import train_run', 'train': 'from .data import load_tgs'}) == [('data', 'train')]
    assert violations({'newmod': ''}) == [('newmod', '(no layer)')]

def test_layers():
    sources = {p.stem: p.read_text() for p in PKG.glob('*.py') if not p.name.startswith('_')}
    assert violations(sources) == []
