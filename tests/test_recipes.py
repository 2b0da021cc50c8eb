"The seed systems' recipes (`salt_nb/configs/seeds/`): each trains a few steps on synthetic tiles, shrunk to CPU size."
import os
import numpy as np, pytest, yaml

from conftest import run_cli, tiny_synth

SMALL_TIMM = 'resnet10t'      # the smallest timm ResNet: stands in for the recipes' ImageNet encoders (no download)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "24 labeled synthetic tiles (2 sections of 6x4, half of them test)."
    return tiny_synth(tmp_path_factory, (6, 4))


def seed_names():
    from salt_nb.runs import preset_names
    return [n for n in preset_names() if n.startswith('seeds/')]


def shrink(cfg):
    "The recipe at CPU-test size: a small encoder of the same kind without weights, 1-2 epochs per stage, batch 4, fold 0 of 2."
    from salt_nb.models import TIMM_MODELS
    model, mk = cfg.model, dict(cfg.model_kwargs)
    if model in TIMM_MODELS: model, mk = 'timm', {**mk, 'arch': SMALL_TIMM, 'pretrained': False}
    if model == 'small': mk = {**mk, 'widths': (8, 16, 24, 32), 'dec_ch': (16, 8, 8)}
    if model == 'frrn': mk = dict(widths=(8, 16, 24), n_units=(1, 1, 1), res_ch=8)
    sched = dict(recipe=dict(warmup_epochs=1, lovasz_epochs=1, n_cycles=1, cycle_len=1),
                 sgdr=dict(n_cycles=1, cycle_len=2)).get(cfg.schedule, dict(epochs=2))
    fk = {**cfg.fit_kwargs, **({'freeze_epochs': 1} if cfg.fit_kwargs.get('freeze_epochs') else {}),
          **({'warmup': 1} if 'warmup' in cfg.fit_kwargs else {}), **({'patience': 1} if 'patience' in cfg.fit_kwargs else {})}
    geometry = 'resize40pad48' if cfg.geom.kind == 'resize_pad' else 'resize48'      # 48 px: seconds on a CPU
    # fp32: under bf16 autocast a model with deep supervision and no cls head fails (see test_deep_supervision_under_bf16)
    return cfg.replace(model=model, model_kwargs=mk, bs=4, n_folds=2, folds=[0], num_threads=1, fit_kwargs=fk, geometry=geometry,
                       precision='fp32', **sched)


def test_every_seed_has_a_recipe():
    names = seed_names()
    for k in ('000', '000_r34', '000_pad128', '000_resize128', '001', '002', '003', '004'):
        assert f'seeds/{k}' in names, k


@pytest.mark.parametrize('name', seed_names())
def test_recipe_config(name):
    "Each recipe loads, is named after its file, and says how to run it on a GPU."
    from importlib.resources import files
    from salt_nb.runs import get_config
    cfg = get_config(name)
    assert cfg.name == name
    text = files('salt_nb').joinpath('configs', f'{name}.yaml').read_text()
    assert f'salt_train DATA --out runs/' in text and f'--config {name}' in text


@pytest.mark.parametrize('name', seed_names())
def test_recipe_trains(tmp_path, data, name):
    "The recipe's schedule, losses, heads and blocks train end to end (OOF score, checkpoint) at test size."
    from salt_nb.data import load_tgs
    from salt_nb.runs import get_config
    from salt_nb.train import train_kfold
    cfg = shrink(get_config(name))
    m = train_kfold(load_tgs(data, progress=False, cache=False).train, cfg, tmp_path/'run', progress=False, quiet=True)
    assert 0 <= m['oof']['score_t05'] <= 1
    ck = sorted(p.name for p in (tmp_path/'run'/'checkpoints').glob('fold0_*.pth'))
    assert ck, ck


def test_recipe_keeps_its_blocks():
    "Shrinking keeps what makes each recipe itself: the blocks, heads and losses the write-ups name."
    from salt_nb.runs import get_config, build_model
    from salt_nb.blocks import GAUBlock, GuidedUpsample
    from salt_nb.models import ObjectContext
    types = lambda name: {type(m).__name__ for m in build_model(shrink(get_config(name))).modules()}
    assert {'GAUBlock', 'GCN'} <= types('seeds/000_resize128')
    assert 'FPA' in types('seeds/000_pad128')
    assert 'GuidedUpsample' in types('seeds/001')
    assert 'ObjectContext' in types('seeds/004')
    assert 'FRRU' in types('seeds/003_frrn')
    assert get_config('seeds/001').loss == 'bce_lovasz_softmax'
    assert get_config('seeds/002').loss_kwargs['edge_weight'] > 0 and get_config('seeds/002').model_kwargs['edge_head']
    assert (get_config('seeds/004').opt, get_config('seeds/004').schedule) == ('adamw', 'noam')
    assert get_config('seeds/000').fit_kwargs['plateau'] and get_config('seeds/000').opt == 'rmsprop'


def test_salt_train_seed_without_weights(tmp_path, data):
    "`salt_train DATA --config seeds/002` offline with no cached ImageNet weights: one line saying how to get them, before training."
    r = run_cli('salt_train', tmp_path, data, '--out', tmp_path/'run', '--config', 'seeds/002', '--folds', '0', timeout=120,
                SALT_NB_CACHE=tmp_path/'cache', HF_HUB_OFFLINE=1, HF_HOME=tmp_path/'hf', TORCH_HOME=tmp_path/'torch')
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stderr.startswith('salt_train: error: ImageNet weights for seresnext50_32x4d are not in'), r.stderr
    assert "timm.create_model('seresnext50_32x4d', pretrained=True)" in r.stderr and 'Traceback' not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not list((tmp_path/'run').rglob('*.pth'))

@pytest.mark.skipif(not os.environ.get('SALT_NB_SLOW'), reason='set SALT_NB_SLOW=1 to run bench/peers.py with a tiny budget (~90 s)')
def test_peers_smoke(tmp_path, data):
    "bench/peers.py end to end with a tiny budget: fastai's unet_learner, smp's scSE U-Net and salt_nb, scored side by side."
    import json, subprocess, sys
    from conftest import REPO, cli_env
    r = subprocess.run([sys.executable, str(REPO/'bench'/'peers.py'), '--data', str(data), '--out', str(tmp_path/'peers'),
                        '--minutes', '0.25', '--bs', '4', '--config', 'demo'], capture_output=True, text=True, timeout=600,
                       env=cli_env(SALT_NB_CACHE=tmp_path/'cache', OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path/'peers'/'peers.json').read_text())
    assert sorted(res['peers']) == ['fastai', 'salt_nb', 'smp']
    for name, p in res['peers'].items():
        assert 0 <= p['score_t05'] <= 1 and 0 <= p['score_tuned'] <= 1 and p['epochs'] >= 1 and p['train_img_per_s'] > 0, name
    assert 'score(tuned)' in r.stdout and 'fold 0 of 5' in r.stdout


def test_deep_supervision_under_bf16():
    "A model with deep supervision and no cls head trains under bf16 autocast (seeds 001 and 004 on a bf16 CPU or a GPU)."
    import torch
    from salt_nb.runs import RunConfig
    from salt_nb.dataloaders import salt_dls
    from salt_nb.learner import salt_learner
    from salt_nb.augment import blob_tile
    imgs = np.stack([blob_tile(s) for s in range(16)])
    cfg = RunConfig(model='tiny', model_kwargs=dict(deep_supervision=True), precision='bf16', bs=4, geometry='resize64')
    learn = salt_learner(salt_dls(imgs, imgs > 128, None, np.arange(12, 16), cfg, device='cpu'), cfg, progress=False)
    learn.fit(1)
