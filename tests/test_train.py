import pytest
import torch

from paretobert.config import ConfigError, TrainConfig
from paretobert.train import TrainingError, default_lr, fine_tune


def test_fine_tune_learns_separable_data(tiny_model, tokenizer, corpus):
    texts, labels, _ = corpus
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        before = (tiny_model(**enc).logits.argmax(-1) == torch.tensor(labels)).float().mean().item()
    stats = fine_tune(tiny_model, tokenizer, texts=texts, labels=labels, seed=0, lr=3e-3,
                      cfg=TrainConfig(epochs=8, batch_size=8, max_length=48), progress=False)
    with torch.no_grad():
        after = (tiny_model(**enc).logits.argmax(-1) == torch.tensor(labels)).float().mean().item()
    assert stats["steps"] == 8 * 5 and stats["loss_last"] < stats["loss_first"]
    assert after >= 0.9 > before or after > before + 0.3
    assert not tiny_model.training


def test_fine_tune_is_seeded(tokenizer, corpus):
    from transformers import BertConfig, BertForSequenceClassification

    def run():
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64, num_labels=3)
        m = BertForSequenceClassification(cfg)
        fine_tune(m, tokenizer, texts=corpus[0], labels=corpus[1], seed=5, lr=1e-3,
                  cfg=TrainConfig(epochs=1, batch_size=8, max_length=32), progress=False)
        return m.classifier.weight.detach().clone()

    assert torch.equal(run(), run())


def test_nan_loss_stops_with_a_message(tiny_model, tokenizer, corpus):
    class NaNLoss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **kw):
            out = self.inner(**kw)
            out.loss = out.loss * float("nan")
            return out

    with pytest.raises(TrainingError, match="lower train.lr"):
        fine_tune(NaNLoss(tiny_model), tokenizer, texts=corpus[0], labels=corpus[1], seed=0, lr=5e-5,
                  cfg=TrainConfig(epochs=1, batch_size=8), progress=False)


def test_default_lr_and_validation():
    assert default_lr(TrainConfig(), pretrained=True, hidden=384) == 5e-5
    assert default_lr(TrainConfig(), pretrained=False, hidden=128) == 1e-3
    assert default_lr(TrainConfig(), pretrained=False, hidden=512) == pytest.approx(5e-4)
    assert default_lr(TrainConfig(lr=2e-3), pretrained=True, hidden=384) == 2e-3
    for bad in ({"epochs": 0}, {"lr": -1.0}, {"batch_size": 0}, {"warmup_ratio": 1.0}, {"device": "tpu"}):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)


def test_distillation_steps_lower_the_kl(tiny_model, tokenizer, corpus):
    import copy

    import torch

    from paretobert.train import Distillation, teacher_logits

    teacher = copy.deepcopy(tiny_model)
    torch.manual_seed(1)
    for p in teacher.parameters():  # a teacher that disagrees with the student
        p.data.add_(torch.randn_like(p) * 0.5)
    texts = corpus[0][:8]
    soft = teacher_logits(teacher, tokenizer, texts, max_length=32, progress=False)
    assert soft.shape == (8, 3)
    kd = Distillation(soft_targets=soft, temperature=2.0, alpha=1.0)
    enc = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    y = torch.tensor(corpus[1][:8])
    student = tiny_model.train()
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = kd.loss(student, dict(enc), y, list(range(8)))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # hidden-state matching adds a term that is zero against itself
    same = Distillation(soft_targets=soft, alpha=1.0, hidden_mse=1.0, teacher=teacher, layer_map=[0, 1])
    student.eval()
    with torch.no_grad():
        self_kd = Distillation(soft_targets=teacher_logits(teacher, tokenizer, texts, max_length=32, progress=False),
                               alpha=1.0, hidden_mse=1.0, teacher=teacher, layer_map=[0, 1])
        assert self_kd.loss(teacher.eval(), dict(enc), y, list(range(8))).item() < 1e-5
        assert same.loss(student, dict(enc), y, list(range(8))).item() > 0
