"""Weight selection: initialise a smaller transformer from a larger pretrained one of the same
family (Xu et al., "Initializing Models with Larger Ones", ICLR 2024).

The student keeps the teacher's architecture family, tokenizer and every shape the preset does
not change; its layers are the teacher's first N (the paper's first-N layer selection) and every
weight tensor is the teacher's at evenly spaced indices along each dimension that shrank
(uniform element selection). Evenly spaced indices depend only on the two sizes, so every
tensor touching the residual stream keeps the same hidden units: the paper's consistency.

:func:`contains` and :func:`student_config` are pure; :func:`select_weights` works on any
Hugging Face encoder whose layers are named ``...layer.<i>.`` (BERT, MPNet, ...).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["contains", "select_weights", "selected_layers", "student_config", "uniform_indices",
           "uniform_layer_map"]

_LAYER = re.compile(r"(\.layer\.)(\d+)(\.)")


def uniform_indices(n_from: int, n_to: int) -> list[int]:
    """``n_to`` evenly spaced indices of ``range(n_from)`` (all of them when the sizes match)."""
    if not 1 <= n_to <= n_from:
        raise ValueError(f"cannot select {n_to} of {n_from}")
    return [i * n_from // n_to for i in range(n_to)]


def selected_layers(n_teacher: int, n_student: int) -> list[int]:
    """The teacher layers the student's layers come from: the first ``n_student``."""
    if not 1 <= n_student <= n_teacher:
        raise ValueError(f"a {n_student}-layer student cannot be selected from a {n_teacher}-layer model")
    return list(range(n_student))


def uniform_layer_map(n_teacher: int, n_student: int) -> list[int]:
    """The teacher layers a selected student's layers imitate in hidden-state distillation
    (they start as the first ``n_student``: :func:`selected_layers`), by TinyBERT's uniform
    mapping: student layer i imitates teacher layer ``(i + 1) n_t / n_s - 1`` (the last
    student layer the last teacher layer)."""
    if not 1 <= n_student <= n_teacher:
        raise ValueError(f"cannot map {n_student} student layers onto {n_teacher}")
    return [(i + 1) * n_teacher // n_student - 1 for i in range(n_student)]


def contains(big: Any, small: Any) -> bool:
    """Whether preset ``small``'s shape fits inside ``big``'s (layers, hidden, intermediate),
    so it can be selected from it."""
    return (small.layers <= big.layers and small.hidden <= big.hidden
            and small.intermediate <= big.intermediate and small.max_position <= big.max_position)


def student_config(teacher_config: Any, *, layers: int, hidden: int, heads: int, intermediate: int) -> Any:
    """The teacher's Hugging Face config with the student's shape (everything else kept:
    family, vocabulary, positions, activation)."""
    import copy

    if hidden % heads:
        raise ValueError(f"hidden={hidden} is not a multiple of heads={heads}")
    cfg = copy.deepcopy(teacher_config)
    for key, value in (("num_hidden_layers", layers), ("hidden_size", hidden),
                       ("num_attention_heads", heads), ("intermediate_size", intermediate)):
        if not hasattr(cfg, key):
            raise ValueError(f"{type(cfg).__name__} has no {key}: weight selection supports BERT-like encoders")
        if value > getattr(cfg, key):
            raise ValueError(f"cannot select {key}={value} from a model with {getattr(cfg, key)}")
        setattr(cfg, key, value)
    return cfg


def select_weights(teacher: Any, student: Any, *, head: bool = False) -> dict[str, Any]:
    """Copy into ``student`` (built from :func:`student_config`) the teacher's weights: layer i
    from the teacher's :func:`selected_layers` [i], each tensor at :func:`uniform_indices` of
    every dimension. Only the body is selected (``base_model_prefix``): a task head keeps its
    seeded initialisation, as do body parameters the teacher lacks; with ``head`` the task head
    too (a teacher fine-tuned on the student's task and labels). Returns what was done (teacher
    layers, copied count, the new parameter names, whether the head was selected)."""
    import torch

    if head:
        t_body, s_body = teacher, student
    else:
        t_body = getattr(teacher, teacher.base_model_prefix, teacher)
        s_body = getattr(student, student.base_model_prefix, student)
    t_state = t_body.state_dict()
    n_t, n_s = teacher.config.num_hidden_layers, student.config.num_hidden_layers
    layer_map = selected_layers(n_t, n_s)
    copied, new = [], []
    with torch.no_grad():
        for name, param in s_body.state_dict().items():
            src = _LAYER.sub(lambda m: f"{m.group(1)}{layer_map[int(m.group(2))]}{m.group(3)}", name)
            w = t_state.get(src)
            if w is None or w.dim() != param.dim():
                new.append(name)
                continue
            if any(a < b for a, b in zip(w.shape, param.shape, strict=True)):
                new.append(name)
                continue
            for dim, (a, b) in enumerate(zip(w.shape, param.shape, strict=True)):
                if a != b:
                    w = w.index_select(dim, torch.as_tensor(uniform_indices(a, b)))
            param.copy_(w)
            copied.append(name)
    return {"layers": layer_map, "of": n_t, "copied": len(copied), "new": new, "head": head}
