"""The demo's result object and its text summary (what ``cipherfuse demo`` prints)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: One line per accuracy the summary shows, explaining where it comes from.
ACCURACY_LEGEND = (
    "own-label acc: a contributor's model on its own held-out images, counting only its "
    "labels (training stops once it reaches the target).",
    "judged acc: what the verifiers measured in cipherspace on the initiator's check "
    "samples: the claimed model's own-label accuracy (accepted at or above the threshold) "
    "or, once another model is accepted, the MetaModel's accuracy with the claim added "
    "(accepted if it improves).",
    "MetaModel accuracy: the initiator's fused model (decrypted models) on held-out test "
    "images of all 10 labels.",
)

#: The legend of a run with secure (three-party) judging.
SECURE_ACCURACY_LEGEND = (
    ACCURACY_LEGEND[0],
    "judged acc: the number of correct predictions the committee opened in three-party "
    "computation (no member saw the model) over the check samples of the model's labels "
    "(accepted at or above the threshold).",
    "MetaModel accuracy: the initiator's fused model (the released models, each checked "
    "against the judged shares) on held-out test images of all 10 labels.",
)


def _fmt(value: object, spec: str = ".3f") -> str:
    return format(value, spec) if isinstance(value, float) and value == value else "-"


def _judged(report: dict[str, Any], claim_id: object) -> float | None:
    values = [
        float(d["accuracy"])
        for decisions in report.get("judgements", {}).values()
        for cid, d in decisions.items()
        if cid == str(claim_id) and isinstance(d.get("accuracy"), float)
    ]
    return sum(values) / len(values) if values else None


def format_summary(report: dict[str, Any]) -> str:
    """The demo's outcome as text: claims, money, accuracies and what they mean."""
    names = {
        c["contributor"]: c.get("name", f"contributor {c['contributor']}") for c in report["claims"]
    }
    width = max([len(n) for n in names.values()] + [11])
    lines = [
        "",
        f"{'contributor':<{width}} {'labels':<10} {'behaviour':<14} {'claim':>5} "
        f"{'votes a/r':>9} {'outcome':<10} {'epochs':>6} {'own-label acc':>13} "
        f"{'judged acc':>10}",
    ]
    for c in report["claims"]:
        labels = ",".join(str(v) for v in c.get("labels", [])) or "-"
        votes = f"{c.get('accept_votes', '-')}/{c.get('reject_votes', '-')}"
        lines.append(
            f"{names[c['contributor']]:<{width}} {labels:<10} {c['behaviour']:<14} "
            f"{c.get('claim_id', '-')!s:>5} {votes:>9} "
            f"{c.get('outcome', c['participant_state']):<10} {c.get('epochs', '-')!s:>6} "
            f"{_fmt(c.get('local_accuracy')):>13} {_fmt(_judged(report, c.get('claim_id'))):>10}"
        )
    lines.append("")
    party_width = max([len(n) for n in report["balances"]] + [5])
    lines.append(
        f"{'party':<{party_width}} {'withdrawn ETH':>14} {'balance change ETH (incl. gas)':>31}"
    )
    for name, b in report["balances"].items():
        lines.append(
            f"{name:<{party_width}} {b['withdrawn_wei'] / 1e18:>14.4f} "
            f"{b['balance_change_wei'] / 1e18:>31.4f}"
        )
    lines.append("")
    test_size = report.get("config", {}).get("test_size", "the")
    for step in report["metamodel_accuracy"]:
        lines.append(
            f"after claim {step['claim_id']}: MetaModel test accuracy {_fmt(step['accuracy'])}"
        )
    final = report["final_accuracy"]
    lines.append(
        "MetaModel accuracy: "
        + (
            f"{final:.3f} on {test_size} held-out test images"
            if isinstance(final, float)
            else "no model was accepted"
        )
        + f" ({report['accepted_models']} model(s) fused); contract balance "
        f"{report['contract_balance_wei']} wei; {report['seconds']} s"
    )
    if report.get("metamodel_file"):
        lines.append(f"MetaModel written to {report['metamodel_file']}")
    lines.append("")
    legend = SECURE_ACCURACY_LEGEND if report.get("judging") == "mpc" else ACCURACY_LEGEND
    lines += [f"  {line}" for line in legend]
    cfg = report.get("config", {})
    lines.append(
        f"This was a reduced run ({cfg.get('train_size', '?')} training images per contributor "
        f"from {report.get('data_source', 'MNIST')}, at most {cfg.get('max_epochs', '?')} "
        "epochs); the paper-scale Case I and III runs (README: 96.22 % with 3 models) are "
        "`cipherfuse reproduce case1` and `case3`."
    )
    if report.get("insecure_params"):
        lines.append(
            "WARNING: this run used --params paper, the paper's INSECURE parameters "
            "(reproduction only): every committee member could read the models it judged."
        )
    if report.get("data_warning"):
        lines.append(str(report["data_warning"]))
    return "\n".join(lines)


@dataclass(frozen=True)
class DemoResult:
    """What :func:`cipherfuse.run_demo` returns.

    Attributes:
        report: the JSON report (claims, votes, balances, accuracies; no keys or salts).
        metamodel_path: the MetaModel file written, or ``None``.
    """

    report: dict[str, Any]
    metamodel_path: Path | None

    @property
    def final_accuracy(self) -> float | None:
        """The MetaModel's test accuracy after the last accepted claim (None if none)."""
        value = self.report["final_accuracy"]
        return float(value) if isinstance(value, float) else None

    @property
    def accepted_models(self) -> int:
        """How many claimed models were accepted and released."""
        return int(self.report["accepted_models"])

    @property
    def seconds(self) -> float:
        """Wall time of the run."""
        return float(self.report["seconds"])

    def summary(self) -> str:
        """The text ``cipherfuse demo`` prints."""
        return format_summary(self.report)
