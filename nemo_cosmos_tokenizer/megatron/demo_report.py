"""The report of ``scripts/train_tokenizer_demo.py``: a Markdown section for TRAINING.md and the list of missed
targets, from the plain dict the script collects (``report.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["PSNR_TARGET", "MATCH_TARGET", "missed_targets", "report_markdown", "sample_rates"]

PSNR_TARGET = 28.0
"""Held-out PSNR (dB) the from-scratch tokenizer must reach."""
MATCH_TARGET = 0.8
"""Fraction of sampled videos whose measured colour and direction must both agree with the caption."""


def sample_rates(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Fractions of ``samples`` (rows with boolean ``colour``/``direction``/``background``/``match``) that agree."""
    if not samples:
        return {key: 0.0 for key in ("colour", "direction", "background", "match")}
    return {key: sum(bool(s[key]) for s in samples) / len(samples) for key in ("colour", "direction", "background",
                                                                               "match")}


def missed_targets(report: dict[str, Any], smoke: bool = False) -> list[str]:
    """What failed: ids changed by the decoder-only fine-tune (always), and, unless ``smoke``, the PSNR, fine-tune
    and content targets."""
    missed = []
    ids = report["finetune"]["ids"]
    for key, label in (("heldout", "ids of the held-out clips"), ("other_heldout", "ids of the other held-out clips"),
                       ("frozen_weights_equal", "encoder and quant_conv weights")):
        if not ids[key]:
            missed.append(f"{label} changed in the decoder-only fine-tune")
    if smoke:
        return missed
    psnr = report["tokenizer"]["psnr"]
    if psnr < PSNR_TARGET:
        missed.append(f"held-out PSNR {psnr:.2f} dB < {PSNR_TARGET} dB")
    before, after = report["finetune"]["other_before"]["psnr"], report["finetune"]["other_after"]["psnr"]
    if not after > before:
        missed.append(f"the decoder-only fine-tune did not raise the other clips' PSNR ({before:.2f} -> {after:.2f} dB)")
    match = sample_rates(report["samples"])["match"]
    if match < MATCH_TARGET:
        missed.append(f"{100 * match:.0f} % of the samples show the caption's colour and direction (< "
                      f"{100 * MATCH_TARGET:.0f} %)")
    return missed


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def report_markdown(report: dict[str, Any], title: str = "Run N: a tokenizer trained here carries the GPT's video"
                    ) -> str:
    """A TRAINING.md section: the command, then one table per step and the samples' measured content."""
    tok, ft, gpt, secs = report["tokenizer"], report["finetune"], report["gpt"], report["seconds"]
    sizes = report["sizes"]
    frames, size = sizes["frames"], sizes["size"]
    rates = sample_rates(report["samples"])
    minutes = secs.get("tokenizer", 0.0) / 60
    lines = [
        f"## {title}", "",
        f"{report.get('device', 'device ?')}. Command (repo root; nothing downloaded):", "",
        "```bash", report["command"], "```", "",
        f"Clips of `megatron/demo.py`, {frames} x {size} x {size}: {sizes['train_clips']} for training (tokenizer and "
        f"GPT), {sizes['heldout_clips']} held out, {sizes['other_clips']} \"other clips\" (the same kind of scenes lit "
        f"from one side under fixed diagonal stripes) and {sizes['other_heldout_clips']} of those held out.", "",
        "**1. Tokenizer from scratch** (`recipes/train_tokenizer_demo.yaml`; PSNR/SSIM as TokenBench computes them, "
        "float32, on the held-out clips, through the ids):", "",
        "| steps | minutes | held-out PSNR (dB) | SSIM | codes in use |", "|---:|---:|---:|---:|---:|",
        f"| {report['tokenizer_steps']} | {minutes:.1f} | **{tok['psnr']:.2f}** (target >= {PSNR_TARGET:g}) | "
        f"{tok['ssim']:.4f} | {tok['codes_used']:,} of {tok['codebook_size']:,} ({tok['clips']} clips) |", "",
        f"Training stopped at {report.get('tokenizer_stopped_by', '?')} (validation: other clips than the held-out "
        "ones scored here).", "",
        f"**2. Decoder-only fine-tune** on the other clips ({ft['steps']} steps, encoder and quant_conv frozen):", "",
        "| tokenizer | other held-out PSNR (dB) | SSIM | held-out PSNR (dB) |", "|---|---:|---:|---:|",
        f"| from scratch | {ft['other_before']['psnr']:.2f} | {ft['other_before']['ssim']:.4f} | {tok['psnr']:.2f} |",
        f"| + decoder fine-tune | **{ft['other_after']['psnr']:.2f}** | {ft['other_after']['ssim']:.4f} | "
        f"{ft['heldout_after']['psnr']:.2f} |", "",
        "Ids encoded before and after, compared exactly: held-out clips "
        f"**{'identical' if ft['ids']['heldout'] else 'CHANGED'}**, other held-out clips "
        f"**{'identical' if ft['ids']['other_heldout'] else 'CHANGED'}**; encoder and quant_conv weights "
        f"{'bitwise equal' if ft['ids']['frozen_weights_equal'] else 'DIFFER'}.", "",
        "**3. GPT** (`recipes/train_gpt_demo.yaml`) on shards built with `--tokenizer <the tokenizer's final/>`:", "",
        "| steps | final validation loss (nats) | unigram entropy (nats) | tokens/s |", "|---:|---:|---:|---:|",
        f"| {gpt['steps']} | {_num(gpt['final_val_loss'])} | {_num(gpt['unigram_entropy'])} | "
        f"{_num(gpt['tokens_per_second'], 0)} |", "",
        f"**4. What the samples show.** {len(report['samples'])} videos sampled for held-out captions (temperature "
        f"{report['temperature']}, top-k {report['top_k']}), decoded by the trained tokenizer, measured by "
        "`megatron/demo_content.py` (object = pixels nearer a palette colour than the background; its median colour "
        "-> nearest palette name; centroid steps -> direction):", "",
        "| samples | colour right | direction right | both (target >= 80 %) | background right |",
        "|---:|---:|---:|---:|---:|",
        f"| {len(report['samples'])} | {_pct(rates['colour'])} | {_pct(rates['direction'])} | "
        f"**{_pct(rates['match'])}** | {_pct(rates['background'])} |", "",
        "| caption | measured colour | measured direction | match |", "|---|---|---|---|",
    ]
    for s in report["samples"]:
        m = s["measured"]
        lines.append(f"| {s['caption']} | {m['colour']} | {m['direction']} | {'yes' if s['match'] else 'no'} |")
    lines += ["", "Seconds: " + ", ".join(f"{k} {v}" for k, v in secs.items()) + ".", ""]
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
