# CRR Monitor: the two commands people start with are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov's pins conflict with aws-sam-cli's: it gets an environment of its own (requirements-checkov.txt).
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
export PYTHONPATH := $(CURDIR)/layers/common:$(CURDIR)/src
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo test unit lint build bench fuzz mutate redrive clean

$(STAMP): requirements-dev.txt layers/common/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt $(STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

## demo: the whole monitor on a local AWS emulator, with S3 replication emulated, and a report
demo: $(STAMP)
	$(BIN)/python -m crrmon_local.demo $(ARGS)

## test: lint, build, then every test (unit, integration, template, built handlers, small demo)
test: $(STAMP) lint build
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## unit: the tests alone, without lint and build
unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff on the code; cfn-lint (informational rules too), checkov and sam validate on the templates
# checkov findings accepted are skipped in the templates (Metadata: checkov: skip:), each with its reason;
# --skip-download: no call to checkov's vendor service, the checks are all local.
lint: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint --include-checks I -- template.yaml forwarder/template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		-f template.yaml -f forwarder/template.yaml
	$(BIN)/sam validate --lint --template template.yaml

## build: sam build for the python3.13 runtime
build: $(STAMP)
	PATH="$(BIN):$$PATH" scripts/sam-build

## bench: speed, memory and AWS usage per object; writes bench/results.md
bench: $(STAMP)
	$(BIN)/python -m crrmon_local.bench $(ARGS)

## fuzz: ingest's batches and the pipeline's verdict property under many more generated cases
fuzz: $(STAMP)
	CRRMON_FUZZ_EXAMPLES=$${CRRMON_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q tests/fuzz $(PYTEST_ARGS)
	CRRMON_FUZZ_EXAMPLES=$${CRRMON_PROPERTY_EXAMPLES:-300} $(BIN)/python -m pytest -q tests/property $(PYTEST_ARGS)

## mutate: mutation testing of decision modules (MODULES="verify store"; default every configured one)
mutate: $(STAMP)
	$(BIN)/python scripts/mutate $(MODULES) $(if $(JOBS),--max-children $(JOBS))

## redrive: move dead-lettered messages back to their queues (ARGS="--stack NAME --dry-run")
redrive: $(STAMP)
	$(BIN)/crrmon redrive $(ARGS)

clean:
	rm -rf .aws-sam $(VENV) .pytest_cache .ruff_cache .hypothesis .mutants
