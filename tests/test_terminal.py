"""Every console script of settings.ini run as a person runs it: in a terminal (a pseudo-terminal, progress bars on)
and through a pipe (`| cat`), on a tiny synthetic dataset; exit code, output files, what is printed, and no traceback."""
import json, os, re
import numpy as np, pandas as pd, pytest, yaml

from conftest import SCRIPTS, run_cli, run_pty, tiny_synth, untrained_run

MODES = ['pty', 'pipe']


def run(mode, name, tmp_path, *args, timeout=400):
    "Run console script `name` in a terminal ('pty') or through pipes ('pipe'); return (exit code, all output, '\\n' lines)."
    env = dict(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE'))
    r = (run_pty if mode == 'pty' else run_cli)(name, tmp_path, *args, timeout=timeout, **env)
    return r.returncode, (r.stdout + r.stderr).replace('\r\n', '\n')


def check_ok(name, rc, out):
    "A command that worked: exit code 0 and no traceback anywhere in its output."
    assert 'Traceback' not in out, f"{name} crashed:\n{out[-3000:]}"
    assert rc == 0, f"{name} exited with {rc}:\n{out[-3000:]}"


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny synthetic Kaggle-layout folder: 2 sections of 6x4 tiles, half of them test (24 labeled, 24 test tiles)."
    return tiny_synth(tmp_path_factory, (6, 4))


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A run folder as salt_train leaves it (two untrained tiny fold checkpoints and a postprocess.json), made in-process."
    return untrained_run(tmp_path_factory.mktemp('runs')/'run', geometry='resize64')


def score_of(out) -> float:
    "The number on salt_score's closing `score X` line."
    m = re.findall(r'^score (\d+\.\d+)\s*$', out, re.M)
    assert m, f"no `score X` line in:\n{out[-2000:]}"
    return float(m[-1])


# What a person types for each console script, and what they expect to find afterwards.
def use_synth(tmp_path, data, run_dir):
    out = tmp_path/'synth'
    def check(out_text):
        assert 'wrote 8 tiles' in out_text
        assert len(pd.read_csv(out/'train.csv')) + len(list((out/'test'/'images').glob('*.png'))) == 8
        assert (out/'depths.csv').exists() and (out/'sample_submission.csv').exists()
    return [out, '--n_sections', 1, '--nx', 4, '--ny', 2], check

def use_score(tmp_path, data, run_dir):
    def check(out_text):
        assert 0 <= score_of(out_text) <= 1
        assert 'coverage' in out_text.lower() or 'class' in out_text.lower()   # the --by_class table
    return [data/'sample_submission.csv', data/'test_truth.csv', '--by_class'], check

def use_mosaic(tmp_path, data, run_dir):
    out = tmp_path/'mosaics.csv'
    def check(out_text):
        assert 'wrote' in out_text and 'mosaics.csv' in out_text
        df = pd.read_csv(out, dtype={'id': str})
        assert list(df.columns) == ['id', 'mosaic_id', 'x', 'y'] and len(df) == 48 and df.id.is_unique
    return [data, '--out', out], check

def use_train(tmp_path, data, run_dir):
    out = tmp_path/'run'
    def check(out_text):
        assert 'OOF' in out_text                                          # the closing summary table
        assert yaml.safe_load((out/'config.yaml').read_text())['epochs'] == 2
        assert (out/'checkpoints'/'fold0_best.pth').stat().st_size > 0
        m = json.loads((out/'metrics.json').read_text())
        assert 0 <= m['oof']['score_tuned'] <= 1
        assert 0 < json.loads((out/'postprocess.json').read_text())['threshold'] < 1
    return [data, '--out', out, '--config', 'demo', '--epochs', 2], check

def use_predict(tmp_path, data, run_dir):
    out = tmp_path/'submission.csv'
    def check(out_text):
        assert 'wrote' in out_text and '2 checkpoint(s)' in out_text
        sub = pd.read_csv(out, keep_default_na=False)
        sample = pd.read_csv(data/'sample_submission.csv', keep_default_na=False)
        assert list(sub.columns) == ['id', 'rle_mask'] and sub.id.tolist() == sample.id.tolist()
    return ['--model', run_dir, '--data', data, '--out', out], check

def use_demo(tmp_path, data, run_dir):
    out = tmp_path/'demo'
    def check(out_text):
        assert 'test labels' in out_text and 'out-of-fold' in out_text     # the closing table
        s = json.loads((out/'summary.json').read_text())
        assert 0 <= s['submission']['test_score'] <= 1
        assert len(pd.read_csv(out/'submission.csv')) == 24 and (out/'report'/'report.md').read_text()
    return ['--data', data, '--out', out, '--minutes', 0.5], check

def use_section(tmp_path, data, run_dir):
    from salt_nb.synth import synthetic_section
    from salt_nb.seismic import write_seismic
    line = write_seismic(tmp_path/'line.sgy', synthetic_section(seed=0, k=0, section_tiles=(2, 2))[0].astype(np.float32) - 128)
    out = tmp_path/'prob.npy'
    def check(out_text):
        assert 'wrote' in out_text and np.load(out).shape == (202, 202) and (tmp_path/'prob_mask.npy').exists()
    return [line, '--model', run_dir, '--out', out, '--stride', 101], check

def use_export(tmp_path, data, run_dir):
    import torch
    from salt_nb.runs import RunConfig, RunDir, build_model, save_checkpoint
    cfg = RunConfig(model='unet', model_kwargs=dict(widths=[4, 8, 16, 32]))    # a model that exports (tiny's pyramid pooling does not)
    ck = save_checkpoint(RunDir(tmp_path/'unet').best(0), build_model(cfg), cfg, fold=0)
    out = tmp_path/'m.onnx'
    def check(out_text):
        assert 'wrote' in out_text and out.stat().st_size > 0 and json.loads((tmp_path/'m.onnx.json').read_text())['config']['model'] == 'unet'
    return [ck, '--out', out], check

USES = {'salt_synth': use_synth, 'salt_score': use_score, 'salt_mosaic': use_mosaic, 'salt_train': use_train,
        'salt_predict': use_predict, 'salt_demo': use_demo, 'salt_section': use_section, 'salt_export': use_export}

BARS = {'salt_train', 'salt_predict', 'salt_section'}   # the scripts that show progress bars in a terminal

# The same scripts, given a data folder (or file) that does not exist.
MISSING = {'salt_synth': lambda t: [t/'busy'],    # a folder with someone else's file: refused, not overwritten
           'salt_score': lambda t: [t/'no_such.csv', t/'no_truth.csv'],
           'salt_mosaic': lambda t: [t/'no_such_data', '--out', t/'m.csv'],
           'salt_train': lambda t: [t/'no_such_data', '--out', t/'run'],
           'salt_predict': lambda t: ['--model', t/'no_such_run', '--data', t/'no_such_data', '--out', t/'s.csv'],
           'salt_demo': lambda t: ['--data', t/'no_such_data', '--out', t/'demo'],
           'salt_section': lambda t: [t/'no_such.sgy', '--model', t/'no_such_run', '--out', t/'p.npy'],
           'salt_export': lambda t: [t/'no_such_run', '--out', t/'m.onnx']}


def test_every_script_is_covered():
    "Each console script of settings.ini has a use and an error case here (a new script needs both)."
    assert set(SCRIPTS) == set(USES) == set(MISSING), (sorted(SCRIPTS), sorted(USES))


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_command(tmp_path, name, mode, data, run_dir):
    "Each script on the tiny data, progress bars on: in a terminal and through a pipe."
    if name not in USES: pytest.fail(f"no terminal test for the console script {name}: add it to USES")
    args, check = USES[name](tmp_path, data, run_dir)
    rc, out = run(mode, name, tmp_path, *args)
    check_ok(name, rc, out)
    check(out)
    if mode == 'pty' and name in BARS: assert '100.00%' in out, f"no progress bar from {name} in a terminal:\n{out[-2000:]}"


def test_session_in_terminal(tmp_path):
    "What the README walks a person through, in one terminal: synth -> train -> predict -> score -> mosaic."
    steps = [('salt_synth', [tmp_path/'tgs', '--n_sections', 2, '--nx', 6, '--ny', 4]),
             ('salt_train', [tmp_path/'tgs', '--out', tmp_path/'run', '--config', 'demo', '--epochs', 2]),
             ('salt_predict', ['--model', tmp_path/'run', '--data', tmp_path/'tgs', '--out', tmp_path/'submission.csv']),
             ('salt_score', [tmp_path/'submission.csv', tmp_path/'tgs'/'test_truth.csv']),
             ('salt_mosaic', [tmp_path/'tgs', '--out', tmp_path/'mosaics.csv'])]
    outs = {}
    for name, args in steps:
        rc, outs[name] = run('pty', name, tmp_path, *args)
        check_ok(name, rc, outs[name])
    assert 0 <= score_of(outs['salt_score']) <= 1
    assert len(pd.read_csv(tmp_path/'submission.csv')) == 24
    assert len(pd.read_csv(tmp_path/'mosaics.csv')) == 48


@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_missing_input_in_terminal(tmp_path, name):
    "A missing data folder (salt_synth: a folder it did not write): non-zero exit, one `error:` line naming it, no traceback."
    (tmp_path/'busy').mkdir(); (tmp_path/'busy'/'notes.txt').write_text('mine\n')
    args = MISSING[name](tmp_path)
    rc, out = run('pty', name, tmp_path, *args)
    assert 'Traceback' not in out, out[-3000:]
    assert rc != 0, out[-3000:]
    errors = [l.split('\r')[-1].strip() for l in out.splitlines() if 'error:' in l]   # the text after any bar
    assert len(errors) == 1 and errors[0].startswith(f'{name}: error:'), out[-3000:]
    assert any(s in errors[0] for s in ('no_such', 'busy')), errors[0]
    assert not (tmp_path/'run').exists() and not (tmp_path/'demo').exists()   # nothing half-written


def test_ctrl_c_then_resume(tmp_path, data):
    "Ctrl-C in the second epoch ends salt_train with one line (exit 130); rerun, it is refused; with --resume, bars on, it finishes."
    args = [data, '--out', tmp_path/'run', '--config', 'demo', '--epochs', 4]
    env = dict(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE'))
    r = run_pty('salt_train', tmp_path, *args, ctrl_c_after=r'Epoch 2/4', timeout=400, **env)
    out = r.stdout.replace('\r\n', '\n')
    assert 'Traceback' not in out and r.returncode == 130, out[-3000:]
    assert re.search(r'^salt_train: interrupted: .*--resume', out, re.M), out[-1000:]
    r = run_pty('salt_train', tmp_path, *args, timeout=400, **env)
    assert r.returncode != 0 and 'holds an unfinished run' in r.stdout, r.stdout[-2000:]
    r = run_pty('salt_train', tmp_path, *args, '--resume', timeout=400, **env)
    check_ok('salt_train --resume', r.returncode, r.stdout.replace('\r\n', '\n'))
    assert '100.00%' in r.stdout and json.loads((tmp_path/'run'/'metrics.json').read_text())['oof'] is not None
