"Tests of `salt_section` and `salt_export` run as a person would: whole sections and cubes in, probabilities, masks and ONNX files out."
import json
import numpy as np, pytest
from salt_nb.seismic import read_seismic, write_seismic
from salt_nb.synth import synthetic_section

from conftest import run_cli, untrained_run


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A run folder with two untrained `tiny` fold checkpoints and a postprocess.json (threshold 0.5)."
    return untrained_run(tmp_path_factory.mktemp('runs')/'run')


@pytest.fixture(scope='module')
def unet_ck(tmp_path_factory):
    "An untrained small `unet` checkpoint (a model that exports to ONNX; the pyramid pooling of `tiny` does not)."
    import torch
    from salt_nb.runs import RunConfig, RunDir, build_model, save_checkpoint
    torch.manual_seed(0)
    cfg, rd = RunConfig(model='unet', model_kwargs=dict(widths=[4, 8, 16, 32]), geometry='pad128'), RunDir(tmp_path_factory.mktemp('runs')/'unet')
    return save_checkpoint(rd.best(0), build_model(cfg), cfg, fold=0)


@pytest.fixture(scope='module')
def line(tmp_path_factory):
    "A synthetic 202x303 section written as SEG-Y, amplitudes centred on zero."
    fn = tmp_path_factory.mktemp('seis')/'line.sgy'
    img = synthetic_section(seed=0, k=0, section_tiles=(3, 2))[0]
    return write_seismic(fn, (img.astype(np.float32) - 128) * 50)


def one_error(r, prog='salt_section'):
    "The single error line of a failed command (exit 1, no traceback)."
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), r.stderr
    return lines[0]


def test_help(tmp_path):
    r = run_cli('salt_section', tmp_path, '--help')
    assert r.returncode == 0, r.stderr
    for opt in ['--model', '--out', '--stride', '--no-tta', '--backend', '--pct', '--crossline', '--threshold', '--iline']:
        assert opt in r.stdout, opt
    assert '--out' in run_cli('salt_export', tmp_path, '--help').stdout


def test_section_segy(tmp_path, run_dir, line):
    out = tmp_path/'res'/'prob.sgy'
    r = run_cli('salt_section', tmp_path, line, '--model', run_dir, '--out', out, '--backend', 'torch', '--stride', 60, '--no-progress')
    assert r.returncode == 0, r.stderr
    p, m = read_seismic(out), read_seismic(tmp_path/'res'/'prob_mask.sgy')
    assert p.shape == (202, 303) and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_array_equal(m, (p > 0.5).astype(np.float32))
    d = json.loads((tmp_path/'res'/'prob.json').read_text())
    assert d['amplitudes']['kind'] == 'percentile' and len(d['models']) == 2 and d['stride'] == 60


def test_cube_npy(tmp_path, run_dir):
    cube = np.random.default_rng(0).integers(0, 256, (3, 105, 110), dtype=np.uint8)
    np.save(tmp_path/'cube.npy', cube)
    r = run_cli('salt_section', tmp_path, tmp_path/'cube.npy', '--model', run_dir/'checkpoints'/'fold0_best.pth',
                '--out', tmp_path/'p.npy', '--backend', 'torch', '--no-tta', '--no-progress', '--threshold', 0.3)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path/'p.npy').shape == cube.shape
    assert np.load(tmp_path/'p_mask.npy').dtype == np.uint8


def in_process(**kw) -> str:
    "The one-line error `salt_section` exits with, called in-process (the command's code path minus argument parsing)."
    from salt_nb.section_cli import salt_section
    with pytest.raises(SystemExit) as e: salt_section(**kw)
    return str(e.value.code)


@pytest.mark.parametrize('make, msg', [
    (lambda d: np.save(d/'in.npy', np.zeros((50, 400), np.float32)), 'smaller than one 101x101 tile'),
    (lambda d: np.save(d/'in.npy', np.full((120, 130), np.nan, np.float32)), 'NaN/inf amplitude(s)'),
    (lambda d: np.save(d/'in.npy', np.zeros(500, np.float32)), 'got 1D'),
    (lambda d: np.save(d/'in.npy', np.zeros((2, 2, 110, 110), np.float32)), 'got 4D'),
    (lambda d: (d/'in.npy').write_bytes(b'garbage'), 'not a readable .npy file'),
])
def test_bad_input(tmp_path, run_dir, make, msg):
    make(tmp_path)
    line = in_process(input=str(tmp_path/'in.npy'), model=[str(run_dir)], out=str(tmp_path/'o.npy'))
    assert line.startswith('salt_section: error: ') and msg in line and 'in.npy' in line and '\n' not in line, line
    assert not (tmp_path/'o.npy').exists()


def test_bad_segy_and_flags(tmp_path, run_dir, line):
    (tmp_path/'bad.sgy').write_bytes(b'\0' * 4000)
    assert 'not a readable SEG-Y file' in one_error(run_cli('salt_section', tmp_path, tmp_path/'bad.sgy', '--model', run_dir, '--out', tmp_path/'o.npy'))
    kw = dict(input=str(line), model=[str(run_dir)])
    assert '--stride must be in 1..101' in in_process(**kw, out=str(tmp_path/'o.npy'), stride=200)
    assert 'unknown format .csv' in in_process(**kw, out=str(tmp_path/'o.csv'))


def test_export_and_onnx_backend(tmp_path, run_dir, unet_ck, line):
    from salt_nb.section_cli import section_predict
    assert '2 checkpoints' in one_error(run_cli('salt_export', tmp_path, run_dir, '--out', tmp_path/'m.onnx'), 'salt_export')
    r = run_cli('salt_export', tmp_path, unet_ck, '--out', tmp_path/'m.onnx')
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/'m.onnx.json').read_text())['config']['model'] == 'unet'
    kw = dict(stride=101, progress=False, precision='fp32')
    section_predict(line, [tmp_path/'m.onnx'], tmp_path/'o.npy', **kw)
    section_predict(line, [unet_ck], tmp_path/'t.npy', backend='torch', **kw)
    section_predict(line, [unet_ck], tmp_path/'x.npy', backend='onnx', **kw)
    np.testing.assert_allclose(np.load(tmp_path/'o.npy'), np.load(tmp_path/'t.npy'), atol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path/'x.npy'), np.load(tmp_path/'t.npy'), atol=1e-4)
    tiny = dict(input=str(line), model=[str(run_dir/'checkpoints'/'fold0_best.pth')], out=str(tmp_path/'y.npy'), backend='onnx')
    assert 'cannot export' in in_process(**tiny)
    (tmp_path/'m.onnx.json').unlink()
    assert 'm.onnx.json: missing' in in_process(input=str(line), model=[str(tmp_path/'m.onnx')], out=str(tmp_path/'o2.npy'))


def test_progress_bar_in_a_terminal(tmp_path, run_dir, line):
    "With progress bars on, in a terminal (fastprogress's console bar), as a person runs it."
    from conftest import run_pty
    r = run_pty('salt_section', tmp_path, line, '--model', run_dir, '--out', tmp_path/'p.png', '--backend', 'torch', '--stride', 101)
    assert r.returncode == 0, r.stdout
    assert 'windows' in r.stdout and 'wrote' in r.stdout, r.stdout
    assert (tmp_path/'p.png').exists() and (tmp_path/'p_mask.png').exists()
