# Jupyter server settings for working on salt_nb's notebooks in JupyterLab.
# `make .venv` links this file into .venv/etc/jupyter/, where the project's `jupyter lab` reads it; with another
# Jupyter, start it as `jupyter lab --config=jupyter_server_config.py` from this folder.
#
# Saving a notebook of this repository then stores it as `nbdev_clean` would (no kernel metadata, execution counts
# or widget state), and a notebook that is kept without outputs (most of them are) is
# saved without outputs, so that running and saving a notebook in JupyterLab leaves nothing for git to show.
import configparser, json, os

def _salt_nb_root(path: str) -> str | None:
    "The folder above `path` whose settings.ini declares the salt_nb library, or None."
    d = os.path.dirname(os.path.abspath(path))
    while True:
        ini = os.path.join(d, 'settings.ini')
        if os.path.exists(ini):
            cfg = configparser.ConfigParser(); cfg.read(ini)
            return d if cfg['DEFAULT'].get('lib_name') == 'salt_nb' else None
        if os.path.dirname(d) == d: return None
        d = os.path.dirname(d)

def salt_nb_pre_save(model, path, contents_manager, **kwargs):
    "Clean a notebook of the salt_nb repository before it is saved; leave every other file alone."
    if model.get('type') != 'notebook' or model.get('content', {}).get('nbformat') != 4: return
    os_path = contents_manager._get_os_path(path)
    root = _salt_nb_root(os_path)
    if root is None: return
    try:
        from nbdev.config import get_config
        from nbdev.clean import clean_nb
    except ImportError: return
    nb, cfg = model['content'], get_config(path=root)
    if os.path.exists(os_path):
        with open(os_path, encoding='utf-8') as f: stored = json.load(f)
        if not any(c.get('outputs') for c in stored.get('cells', [])):
            for c in nb['cells']:
                if c.get('cell_type') == 'code': c['outputs'] = []
    clean_nb(nb, cfg.clear_all, cfg.get('allowed_metadata_keys').split(), cfg.get('allowed_cell_metadata_keys').split(),
             cfg.clean_ids)   # what `nbdev_clean` does with this repository's settings
    nb.get('metadata', {}).pop('widgets', None)

c.FileContentsManager.pre_save_hook = salt_nb_pre_save
