# Sluice: `make run` starts the whole app locally, `make test` runs every test.
# Both install what is missing first: system packages, the virtualenv, the
# pinned Python requirements.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

# Debian packages the tests and the local cloud need (checked with dpkg,
# installed only when missing).
# libreoffice-calc-nogui: the report tests prove a report opens in LibreOffice.
# chromium: the dashboard's browser tests drive Debian's Chromium through
#   Playwright (its executable path, so `playwright install` never runs).
# tesseract-ocr (with its English data): the pages processor's OCR engine in
#   local runs and tests (Textract on AWS).
SYSTEM_PACKAGES ?= libreoffice-calc-nogui chromium tesseract-ocr tesseract-ocr-eng

.PHONY: install system-deps run test test-fast bench lint clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(MAKE) --no-print-directory system-deps
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || $(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="python3-venv"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

run: install
	$(BIN)/python -m local_cloud

test: install system-deps
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/python -m bench.profile_bench
	$(BIN)/python -m bench.carbon_bench
	$(BIN)/python -m bench.report_bench
	$(BIN)/python -m bench.scan_bench
	$(BIN)/python -m bench.pages_bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/cfn-lint infra/template.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# A stage on AWS: the stack (infra/template.yaml), its Outputs in the stage's
# .chalice/config.json, chalice deploy and what Chalice leaves undone
# (infra/deploy.py). Needs AWS credentials, as the AWS CLI finds them.
#   make deploy STAGE=dev [ALERT_EMAIL=ops@example.com] [REGION=eu-west-1]
#   make destroy STAGE=dev
STAGE ?= dev
DEPLOY_OPTIONS = --stage $(STAGE) $(if $(REGION),--region $(REGION))

.PHONY: deploy destroy

deploy: install
	$(BIN)/python -m infra.deploy deploy $(DEPLOY_OPTIONS) $(if $(ALERT_EMAIL),--alert-email $(ALERT_EMAIL))

destroy: install
	$(BIN)/python -m infra.deploy destroy $(DEPLOY_OPTIONS)
