"Tests of the `salt_predict` command on a tiny synthetic Kaggle-layout folder (as a subprocess, and in-process for the errors)."
import numpy as np, pandas as pd, pytest, torch
from salt_nb.data import rle_decode
from salt_nb.runs import RunConfig, RunDir, build_model, save_checkpoint
from salt_nb.probs import load_probs
from salt_nb.inference import salt_predict

from conftest import run_cli, tiny_synth, untrained_run


def run(tmp_path, *args):
    "Run salt_predict with `args`; return the CompletedProcess (text output)."
    return run_cli('salt_predict', tmp_path, *args, SALT_NB_CACHE=tmp_path/'cache')



@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny synthetic Kaggle-layout folder: 2 sections of 4x2 tiles, half of them test."
    return tiny_synth(tmp_path_factory, (4, 2))


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A run folder with two untrained fold checkpoints and a postprocess.json."
    return untrained_run(tmp_path_factory.mktemp('runs')/'run')


def test_help(tmp_path):
    r = run(tmp_path, '--help')
    assert r.returncode == 0, r.stderr
    for opt in ['--model', '--data', '--out', '--probs', '--no-tta', '--device', '--bs', '--threads', '--threshold', '--mosaics', '--no-mosaic_up']:
        assert opt in r.stdout, opt


def test_end_to_end(tmp_path, data, run_dir):
    out, probs = tmp_path/'sub'/'submission.csv', tmp_path/'probs.npz'
    r = run(tmp_path, '--model', run_dir, run_dir/'checkpoints'/'fold0_best.pth', '--data', data, '--out', out,
            '--probs', probs, '--bs', 3, '--device', 'cpu', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert 'wrote' in r.stdout and '2 checkpoint(s)' in r.stdout
    assert 'mosaics (auto):' in r.stdout and 'mosaic post-processing:' in r.stdout  # on by default
    sub = pd.read_csv(out, keep_default_na=False)
    sample = pd.read_csv(data/'sample_submission.csv', keep_default_na=False)
    assert list(sub.columns) == ['id', 'rle_mask']
    assert sub.id.tolist() == sample.id.tolist()  # every sample id, once, in the sample's order
    masks = np.stack([rle_decode(x) for x in sub.rle_mask])
    assert all(m.sum() == 0 or m.sum() >= 10 for m in masks)  # min_area of postprocess.json applied
    p = load_probs(probs)
    assert p.ids.tolist() == sample.id.tolist() and p.probs.dtype == np.uint8
    assert [f.name for f in out.parent.iterdir()] == ['submission.csv']  # no temporary file left


def test_no_tta_and_threshold_override(tmp_path, data, run_dir, capsys, monkeypatch):
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    out = tmp_path/'s.csv'  # in-process from here on: the same code path as the command, minus argument parsing
    salt_predict(model=[str(run_dir)], data=str(data), out=str(out), tta=False, threshold=0.3, progress=False)
    assert 'threshold 0.3' in capsys.readouterr().out
    assert out.exists()


def _error(**kw) -> str:
    "The message `salt_predict` exits with."
    with pytest.raises(SystemExit) as e: salt_predict(**kw)
    return str(e.value.code)


def test_missing_model(tmp_path, data):
    msg = _error(model=[str(tmp_path/'no_such_run')], data=str(data), out=str(tmp_path/'s.csv'))
    assert 'no run folder or checkpoint' in msg and 'no_such_run' in msg
    assert not (tmp_path/'s.csv').exists()


def test_missing_data(tmp_path, run_dir):
    msg = _error(model=[str(run_dir)], data=str(tmp_path/'no_such_data'), out=str(tmp_path/'s.csv'))
    assert 'no_such_data' in msg and 'does not exist' in msg
    assert not (tmp_path/'s.csv').exists()


def test_empty_run_folder(tmp_path, data):
    (tmp_path/'empty_run').mkdir()
    assert 'no checkpoints in' in _error(model=[str(tmp_path/'empty_run')], data=str(data))


def test_required_arguments(tmp_path):
    r = run(tmp_path, '--out', tmp_path/'s.csv')
    assert r.returncode != 0
    assert '--model' in r.stderr


def _with_vertical_source(src, dst, above=True):
    "A copy of data folder `src` in which a train tile directly above (else below) a test tile has a vertical mask."
    import shutil
    from PIL import Image
    from salt_nb.data import rle_encode
    shutil.copytree(src, dst)
    pos, train = pd.read_csv(dst/'positions.csv', dtype={'id': str}), pd.read_csv(dst/'train.csv', dtype={'id': str})
    test_ids = set(pd.read_csv(dst/'sample_submission.csv', dtype={'id': str}).id)
    nb = pos.assign(y=pos.y - (1 if above else -1)).merge(pos, on=['section', 'x', 'y'], suffixes=('_test', ''))
    pair = nb[nb.id.isin(train.id) & nb.id_test.isin(test_ids)].iloc[0]
    vm = np.zeros((101, 101), bool); vm[:, :37] = True
    Image.fromarray(vm.astype(np.uint16) * 65535).save(dst/'train'/'masks'/f'{pair.id}.png')
    train.loc[train.id == pair.id, 'rle_mask'] = rle_encode(vm)
    train.to_csv(dst/'train.csv', index=False)
    pos.rename(columns={'section': 'mosaic_id'}).to_csv(dst/'mosaics.csv', index=False)
    return dst, pair.id, pair.id_test, vm


def test_mosaics_continue_vertical_masks(tmp_path, data, run_dir, capsys, monkeypatch):
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    dd, src, tile, vm = _with_vertical_source(data, tmp_path/'tgs')
    subs = {}
    for m, up in [('none', True), (str(dd/'mosaics.csv'), True), (str(dd/'mosaics.csv'), False)]:
        salt_predict(model=[str(run_dir)], data=str(dd), out=str(tmp_path/'s.csv'), mosaics=m, mosaic_up=up, progress=False)
        s = pd.read_csv(tmp_path/'s.csv', keep_default_na=False).set_index('id').rle_mask
        subs[m, up] = {i: rle_decode(r) for i, r in s.items()}
    out = capsys.readouterr().out
    assert out.count('mosaic post-processing: 1 test tile(s) continue a vertical train mask (0 above their source)') == 2, out
    on, off = subs[str(dd/'mosaics.csv'), True], subs['none', True]
    assert all((on[i] == subs[str(dd/'mosaics.csv'), False][i]).all() for i in on)  # nothing above the source here
    assert (on[tile] == vm).all() and not (off[tile] == vm).all()  # the tile below the source inherits its mask
    assert all((on[i] == off[i]).all() for i in on if i != tile)     # and no other tile changes


def test_bad_mosaics_file(tmp_path, data, run_dir):
    bad = tmp_path/'m.csv'; pd.DataFrame(dict(id=['x'], x=[0], y=[0])).to_csv(bad, index=False)
    assert "missing column(s) ['mosaic_id']" in _error(model=[str(run_dir)], data=str(data), mosaics=str(bad), out=str(tmp_path/'s.csv'))
    assert not (tmp_path/'s.csv').exists()


def test_mosaics_walk_up(tmp_path, data, run_dir, capsys, monkeypatch):
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    dd, src, tile, vm = _with_vertical_source(data, tmp_path/'tgs', above=False)   # the test tile is above the source
    got = {}
    for up in (True, False):
        salt_predict(model=[str(run_dir)], data=str(dd), out=str(tmp_path/'s.csv'), mosaics=str(dd/'mosaics.csv'), mosaic_up=up, progress=False)
        got[up] = rle_decode(pd.read_csv(tmp_path/'s.csv', keep_default_na=False).set_index('id').rle_mask[tile])
    assert (got[True] == vm).all() and not (got[False] == vm).all()
    assert '(1 above their source)' in capsys.readouterr().out


def test_progress_bars(tmp_path, data, run_dir):
    "With progress bars (the default), as in a terminal: fastprogress's console bar."
    out = tmp_path/'s.csv'
    r = run(tmp_path, '--model', run_dir, '--data', data, '--out', out, '--bs', 3, '--device', 'cpu', '--mosaics', 'none')
    assert r.returncode == 0, r.stderr[-3000:]
    assert out.exists() and 'Traceback' not in r.stderr


def test_help_trust_code(tmp_path):
    r = run(tmp_path, '--help')
    assert r.returncode == 0, r.stderr
    assert '--trust_code' in r.stdout and 'module:callable' in ' '.join(r.stdout.split())


@pytest.mark.parametrize('kw, msg', [
    (dict(out='DIR'), '--out'),
    (dict(probs='DIR'), '--probs'),
    (dict(out='FILE/s.csv'), '--out'),
    (dict(threshold=1.5), '--threshold'),
    (dict(threshold=-0.1), '--threshold'),
    (dict(min_area=-1), '--min_area'),
    (dict(cls_threshold=1.5), '--cls_threshold'),
    (dict(bs=0), '--bs'),
    (dict(mosaics='MISSING'), 'missing mosaics file'),
])
def test_bad_values_fail_before_data_and_models(tmp_path, kw, msg):
    "Each bad value is refused first: the model and data given do not even exist."
    (tmp_path/'dir').mkdir(); (tmp_path/'file').write_text('x')
    subst = dict(DIR=tmp_path/'dir', MISSING=tmp_path/'missing.csv', FILE=tmp_path/'file')
    kw = {k: str(subst[v.split('/')[0]]/('/'.join(v.split('/')[1:]))) if isinstance(v, str) and v.split('/')[0] in subst else v
          for k, v in kw.items()}
    got = _error(**{'model': [str(tmp_path/'no_such_run')], 'data': str(tmp_path/'no_such_data'),
                    'out': str(tmp_path/'s.csv'), **kw})
    assert got.startswith('salt_predict: error: ') and msg in got and '\n' not in got, got
    assert 'no_such' not in got


def test_bad_value_as_a_command(tmp_path, data, run_dir):
    r = run(tmp_path, '--model', run_dir, '--data', data, '--out', tmp_path/'s.csv', '--threshold', 2)
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('salt_predict: error: --threshold'), r.stderr
    (tmp_path/'out_dir').mkdir()
    r = run(tmp_path, '--model', run_dir, '--data', data, '--out', tmp_path/'out_dir')
    assert r.returncode != 0 and 'Traceback' not in r.stderr and 'out_dir' in r.stderr


def test_custom_code_needs_trust_code(tmp_path, data):
    "A checkpoint whose model is module:callable is loaded only with --trust_code."
    cfg = RunConfig(model='torch.nn:Conv2d', model_kwargs=dict(in_channels=1, out_channels=1, kernel_size=3, padding=1),
                    geometry='pad128')
    ck = tmp_path/'run'/'checkpoints'/'fold0_best.pth'
    save_checkpoint(ck, torch.nn.Conv2d(1, 1, 3, padding=1), cfg)
    args = dict(model=[str(ck)], data=str(data), out=str(tmp_path/'s.csv'), mosaics='none', progress=False)
    assert '--trust_code' in _error(**args)
    assert not (tmp_path/'s.csv').exists()
    salt_predict(**args, trust_code=True)
    assert (tmp_path/'s.csv').exists()


def test_os_errors_are_one_line(tmp_path, data, run_dir, monkeypatch):
    "An operating-system refusal on a user's path (here: the submission path turns out to be a folder) is one line naming it."
    import salt_nb.inference as inf
    def write(ids, masks, out, sample): raise IsADirectoryError(21, 'Is a directory', str(out))
    monkeypatch.setattr(inf, 'write_submission', write)
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    msg = _error(model=[str(run_dir)], data=str(data), out=str(tmp_path/'s.csv'), mosaics='none', progress=False)
    assert msg == f"salt_predict: error: {tmp_path/'s.csv'}: is a directory"


def test_onnx_backend_matches_torch(tmp_path, data, run_dir, monkeypatch):
    "`--backend onnx` (exported in memory) and an `.onnx` model from salt_export give the torch probabilities (uint8, to 1 step)."
    monkeypatch.setenv('SALT_NB_CACHE', str(tmp_path/'cache'))
    from salt_nb.section_cli import export_run
    torch.manual_seed(0)                                   # a model that exports (the pyramid pooling of `tiny` does not)
    cfg = RunConfig(model='unet', model_kwargs=dict(widths=[4, 8, 16, 32]), geometry='pad128')
    ck = save_checkpoint(RunDir(tmp_path/'unet').best(0), build_model(cfg), cfg, fold=0)
    export_run(ck, tmp_path/'m.onnx')
    kw = dict(data=str(data), precision='fp32', mosaics='none', progress=False)
    probs = {}
    for name, model, backend in [('t', ck, 'torch'), ('o', ck, 'onnx'), ('f', tmp_path/'m.onnx', 'auto')]:
        salt_predict(model=[str(model)], out=str(tmp_path/f'{name}.csv'), probs=str(tmp_path/f'{name}.npz'), backend=backend, **kw)
        probs[name] = load_probs(tmp_path/f'{name}.npz').probs.astype(int)
    assert np.abs(probs['o'] - probs['t']).max() <= 1 and np.abs(probs['f'] - probs['t']).max() <= 1
    assert 'unknown backend' in _error(model=[str(ck)], out=str(tmp_path/'x.csv'), backend='tf', **kw)
