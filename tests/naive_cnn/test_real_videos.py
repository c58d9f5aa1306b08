"""Issue 13: on real encoded videos, per-clip BatchNorm scores what training learnt; running averages do not.

24 small H.264 videos (8 frames, 48x48): textured scenes that pan, each with its own
brightness and contrast; fakes carry a pasted, seamed patch. A short training (batch 1,
AdamW, chunks of 4 frames) followed by scoring the validation half with the same weights
in both BatchNorm modes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from tests.naive_cnn import videos


def load(items):
    return [(torch.from_numpy(videos.decode(path)).permute(0, 3, 1, 2).contiguous(), label) for path, label in items]


def test_clip_statistics_beat_running_statistics_on_the_same_weights(make_model, tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    train = load(videos.write_dataset(tmp_path / "train", 12, frames=8, size=48, seed=1))
    val = load(videos.write_dataset(tmp_path / "val", 12, frames=8, size=48, seed=2))
    assert train[0][0].shape == (8, 3, 48, 48) and train[0][0].dtype == torch.uint8

    model = make_model(seed=0, chunk_size=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    order = torch.Generator().manual_seed(0)
    for _epoch in range(8):
        model.train()
        for i in torch.randperm(len(train), generator=order).tolist():
            clip, label = train[i]
            loss = F.cross_entropy(model(clip[None]), torch.tensor([label]))
            opt.zero_grad()
            loss.backward()
            opt.step()

    model.eval()
    labels = [label for _, label in val]
    auc = {}
    for norm_stats in ("clip", "running"):
        model.norm_stats = norm_stats
        with torch.no_grad():
            scores = [torch.softmax(model(clip[None]), 1)[0, 1].item() for clip, _ in val]
        auc[norm_stats] = roc_auc_score(labels, scores)
    # Over six training seeds: clip 0.89-1.0, running 0.42-0.67.
    assert auc["clip"] >= 0.85, auc
    assert auc["clip"] - auc["running"] >= 0.2, auc
