# One command per job. `make test` is what CI runs (through .ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# jobqueue dev's options: make dev ARGS='--port 8002 --handlers myjobs.py'
ARGS ?=

.PHONY: help venv tools node-tools keda-tools browser image test test-fast lint dev e2e-kind e2e-containers bench manifests clean screenshots

help:
	@echo "make test      create the venv, build the control-plane tools, run every test"
	@echo "make dev       run the local stack (embedded PostgreSQL, API, autoscaled workers);"
	@echo "               its options in ARGS, e.g. make dev ARGS='--port 8002 --handlers jobs.py'"
	@echo "make tools     build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm"
	@echo "make node-tools also a real node and kind: kubelet, kube-proxy, containerd, runc, CoreDNS,"
	@echo "               kubeadm, kind, crictl, CNI plugins, local-path-provisioner (root: apt)"
	@echo "make keda-tools also KEDA's operator and metrics adapter (docs' ScaledObject test, bench)"
	@echo "make browser   install Debian's headless Chromium for the console's browser tests"
	@echo "make screenshots  retake the console's screenshots in docs/console/"
	@echo "make image     build the job-queue image with no registry (debootstrap base, docker)"
	@echo "make e2e-containers  the chart on a real kubelet and containerd, with our image (root)"
	@echo "make e2e-kind  the kind suite: builds kind and its images here, starts dockerd if none (root)"
	@echo "make bench     run the benchmarks"
	@echo "make manifests regenerate manifests/ from the chart"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

tools:
	bash tools/build-tools.sh

node-tools:
	bash tools/setup-node.sh --kind

# KEDA's operator and adapter, for the docs' ScaledObject test and bench/bench_vs_keda.py
keda-tools:
	bash tools/build-tools.sh --keda

browser:
	bash tools/install-browser.sh

image:
	bash tools/build-image.sh

test: venv node-tools keda-tools browser
	JOBQUEUE_TOOLS_DIR="$$(dirname "$$(bash tools/build-tools.sh --print-bin)")" \
	JOBQUEUE_CHROMIUM="$$(bash tools/install-browser.sh | tail -n 1)" \
		$(BIN)/pytest tests $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/pytest tests/unit tests/integration -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

dev: venv
	$(BIN)/jobqueue dev $(ARGS)

e2e-kind: venv node-tools
	JOBQUEUE_TOOLS_DIR="$$(dirname "$$(bash tools/build-tools.sh --print-bin)")" \
		$(BIN)/pytest tests/kind -v -rs $(PYTEST_ARGS)

e2e-containers: venv node-tools
	JOBQUEUE_TOOLS_DIR="$$(dirname "$$(bash tools/build-tools.sh --print-bin)")" \
		$(BIN)/pytest tests/containers -v -rs $(PYTEST_ARGS)

bench: venv tools
	bash bench/run-all.sh

screenshots: venv browser
	JOBQUEUE_CHROMIUM="$$(bash tools/install-browser.sh | tail -n 1)" \
		$(BIN)/python docs/console/screenshots.py

manifests: venv tools
	$(BIN)/python tools/render-manifests.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
