"Tests of the `salt_predict` command, run as a subprocess on a tiny synthetic Kaggle-layout folder."
import os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from salt_nb.data import rle_decode
from salt_nb.runs import RunConfig, RunDir, build_model, save_checkpoint
from salt_nb.inference import save_postprocess, load_probs

REPO = Path(__file__).resolve().parents[1]


def _cmd(tmp_path):
    "The installed `salt_predict` console script, else a script file that calls `salt_nb.inference.salt_predict`."
    exe = Path(sys.executable).parent/'salt_predict'
    if exe.exists(): return [str(exe)]
    if shutil.which('salt_predict'): return [shutil.which('salt_predict')]
    script = tmp_path/'salt_predict_script.py'  # call_parse parses argv only when run as a script file
    script.write_text('from salt_nb.inference import salt_predict\nsalt_predict()\n')
    return [sys.executable, str(script)]


def run(tmp_path, *args):
    "Run salt_predict with `args`; return the CompletedProcess (text output)."
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]),
           'PYTHONWARNINGS': 'ignore', 'SALT_NB_CACHE': str(tmp_path/'cache'), 'NO_ALBUMENTATIONS_UPDATE': '1'}
    return subprocess.run([*_cmd(tmp_path), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def _tiny_cfg() -> RunConfig:
    "The smallest model of salt_nb.models when it exists, else a single convolution (colon form of RunConfig.model)."
    try:
        from salt_nb.models import get_model  # noqa: F401
        return RunConfig(model='small', model_kwargs={}, geometry='pad128')
    except ImportError:
        return RunConfig(model='torch.nn:Conv2d', geometry='pad128',
                         model_kwargs=dict(in_channels=1, out_channels=1, kernel_size=3, padding=1))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny synthetic Kaggle-layout folder: 2 sections of 4x2 tiles, half of them test."
    from salt_nb.synth import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('synth')/'tgs', n_sections=2, section_tiles=(4, 2), progress=False)


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A run folder with two untrained fold checkpoints and a postprocess.json."
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    rd = RunDir(tmp_path_factory.mktemp('runs')/'run')
    for k in range(2): save_checkpoint(rd.best(k), build_model(cfg), cfg, fold=k)
    save_postprocess(dict(threshold=0.5, min_area=10, cls_threshold=None, score_oof=0.0), rd.path)
    return rd.path


def test_help(tmp_path):
    r = run(tmp_path, '--help')
    assert r.returncode == 0, r.stderr
    for opt in ['--model', '--data', '--out', '--probs', '--no-tta', '--device', '--bs', '--workers', '--threshold']:
        assert opt in r.stdout, opt


def test_end_to_end(tmp_path, data, run_dir):
    out, probs = tmp_path/'sub'/'submission.csv', tmp_path/'probs.npz'
    r = run(tmp_path, '--model', run_dir, run_dir/'checkpoints'/'fold0_best.pth', '--data', data, '--out', out,
            '--probs', probs, '--bs', 3, '--device', 'cpu', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert 'wrote' in r.stdout and '2 checkpoint(s)' in r.stdout
    sub = pd.read_csv(out, keep_default_na=False)
    sample = pd.read_csv(data/'sample_submission.csv', keep_default_na=False)
    assert list(sub.columns) == ['id', 'rle_mask']
    assert sub.id.tolist() == sample.id.tolist()  # every sample id, once, in the sample's order
    masks = np.stack([rle_decode(x) for x in sub.rle_mask])
    assert all(m.sum() == 0 or m.sum() >= 10 for m in masks)  # min_area of postprocess.json applied
    p = load_probs(probs)
    assert p.ids.tolist() == sample.id.tolist() and p.probs.dtype == np.uint8
    assert [f.name for f in out.parent.iterdir()] == ['submission.csv']  # no temporary file left


def test_no_tta_and_threshold_override(tmp_path, data, run_dir):
    out = tmp_path/'s.csv'
    r = run(tmp_path, '--model', run_dir, '--data', data, '--out', out, '--no-tta', '--threshold', '0.3', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert 'threshold 0.3' in r.stdout


def test_missing_model(tmp_path, data):
    r = run(tmp_path, '--model', tmp_path/'no_such_run', '--data', data, '--out', tmp_path/'s.csv')
    assert r.returncode != 0
    assert 'no run folder or checkpoint' in r.stderr and 'no_such_run' in r.stderr
    assert not (tmp_path/'s.csv').exists()


def test_missing_data(tmp_path, run_dir):
    r = run(tmp_path, '--model', run_dir, '--data', tmp_path/'no_such_data', '--out', tmp_path/'s.csv')
    assert r.returncode != 0
    assert 'no_such_data' in r.stderr and 'does not exist' in r.stderr
    assert not (tmp_path/'s.csv').exists()


def test_required_arguments(tmp_path):
    r = run(tmp_path, '--out', tmp_path/'s.csv')
    assert r.returncode != 0
    assert '--model' in r.stderr


def test_empty_run_folder(tmp_path, data):
    (tmp_path/'empty_run').mkdir()
    r = run(tmp_path, '--model', tmp_path/'empty_run', '--data', data)
    assert r.returncode != 0 and 'no checkpoints in' in r.stderr
