"""An evaluation report a person can read: HTML with PR curves and confusion matrices (PNG)."""

from __future__ import annotations

import html
from pathlib import Path

from alertd.domain import LABELS
from alertd.errors import AlertdError
from alertd.model.evaluation import RELEVANT, Evaluation


def write_report(evaluation: Evaluation, out_dir: Path, model_id: str, data_name: str) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.metrics import precision_recall_curve
    except ImportError:
        raise AlertdError("the report needs matplotlib: pip install 'alertd[report]'")

    out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for label in (*LABELS, RELEVANT):
        y, score = evaluation.y_true[label], evaluation.y_score[label]
        fig, (curve, matrix) = plt.subplots(1, 2, figsize=(10, 4))
        if y.any():
            precision, recall, _ = precision_recall_curve(y, score)
            curve.plot(recall, precision, label=f"model (PR-AUC {evaluation.model['all'][label].pr_auc:.3f})")
        m, b = evaluation.model["all"][label], evaluation.baseline["all"][label]
        curve.scatter([m.recall], [m.precision], marker="o", color="C0", label="model at its threshold", zorder=3)
        curve.scatter([b.recall], [b.precision], marker="x", color="C3", s=80, label="keyword baseline", zorder=3)
        curve.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=f"{label}: precision-recall")
        curve.legend(loc="lower left", fontsize=8)
        cells = m.confusion
        matrix.imshow(cells, cmap="Blues")
        for i in range(2):
            for j in range(2):
                matrix.text(j, i, str(cells[i][j]), ha="center", va="center", fontsize=14)
        matrix.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["predicted 0", "predicted 1"], yticklabels=["true 0", "true 1"], title=f"{label}: confusion (model)")
        fig.tight_layout()
        name = f"{label}.png"
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        images.append(name)

    rows = []
    for group, per_label in evaluation.model.items():
        for label, m in per_label.items():
            b = evaluation.baseline[group][label]
            auc = f"{m.pr_auc:.3f}" if m.pr_auc is not None else "–"
            interval = f"{m.f1_interval[0]:.3f}–{m.f1_interval[1]:.3f}" if m.f1_interval else "–"
            rows.append(
                f"<tr><td>{html.escape(group)}</td><td>{label}</td><td>{m.n}</td><td>{m.support}</td><td>{m.precision:.3f}</td>"
                f"<td>{m.recall:.3f}</td><td><b>{m.f1:.3f}</b></td><td>{interval}</td><td>{auc}</td><td>{b.precision:.3f}</td><td>{b.recall:.3f}</td><td>{b.f1:.3f}</td></tr>"
            )
    page = out_dir / "index.html"
    page.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>alertd evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}</style></head><body>
<h1>alertd evaluation</h1><p>model <code>{html.escape(model_id)}</code> on <code>{html.escape(data_name)}</code>, {len(evaluation.ids)} articles</p>
<table border="1" cellspacing="0"><tr><th>group</th><th>label</th><th>n</th><th>positives</th><th>P</th><th>R</th><th>F1</th><th>F1 95 % interval</th><th>PR-AUC</th><th>keyword P</th><th>keyword R</th><th>keyword F1</th></tr>
{''.join(rows)}</table>
{''.join(f'<h2>{html.escape(i[:-4])}</h2><img src="{i}" alt="{i}">' for i in images)}
</body></html>""",
        encoding="utf-8",
    )
    return page
