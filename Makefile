# salt_nb: `make demo` and `make test` are the two commands a user needs (see README.md).
# OMP_WAIT_POLICY=PASSIVE: the tests run two notebook workers on two cores; busy-waiting OpenMP threads would
# otherwise steal the cores from each other (measured 3x slower training steps).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is installed first and pinned: this build is on local disk here; elsewhere pip downloads it.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
DATA   ?=
OUT    ?= runs/demo

.PHONY: .venv demo test export clean-venv

$(VENV)/.installed: settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# Jupyter reads the settings in $(VENV)/etc/jupyter: the repository's pre-save hook keeps saved notebooks clean.
JUPYTER_CFG := $(VENV)/etc/jupyter/jupyter_server_config.py
$(JUPYTER_CFG): jupyter_server_config.py | $(VENV)/.installed
	mkdir -p $(@D) && ln -sf ../../../jupyter_server_config.py $@

.venv: $(VENV)/.installed $(JUPYTER_CFG)

## Run the main job end to end into $(OUT): synthetic data unless DATA=path/to/kaggle/folder.
demo: .venv
	PATH="$(CURDIR)/$(BIN):$$PATH" NO_ALBUMENTATIONS_UPDATE=1 $(BIN)/salt_demo $(if $(DATA),--data "$(DATA)") --out "$(OUT)"

## Fail on nbdev export/clean drift, then run the notebook tests and the pytest suite.
test: .venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash .ci/check_nbdev_sync
	PATH="$(CURDIR)/$(BIN):$$PATH" NO_ALBUMENTATIONS_UPDATE=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/nbdev_test --n_workers 2 --do_print --timing
	PATH="$(CURDIR)/$(BIN):$$PATH" NO_ALBUMENTATIONS_UPDATE=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q tests

## Export the notebooks to salt_nb/, clean them and rebuild README.md (run before committing).
export: .venv
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean
	$(BIN)/jupyter nbconvert --to markdown --stdout --log-level=ERROR nbs/index.ipynb > README.md

clean-venv:
	rm -rf $(VENV)
