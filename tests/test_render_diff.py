"""``diff`` fits a screen without -v and lists every tensor with it; counts checked against torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

DRIVE = Path(__file__).resolve().parent.parent / "examples" / "drive"
M, L, XS = DRIVE / "ConvNeXtPose_M (1).tar", DRIVE / "ConvNeXtPose_L (1).tar", DRIVE / "ConvNeXtPose_XS.tar"


def _torch_state_dict(torch, path: Path) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = obj["network"]
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _torch_counts(torch, a: Path, b: Path) -> dict[str, int]:
    """What torch says about two state dicts: the ground truth for diff's counts."""
    sa, sb = _torch_state_dict(torch, a), _torch_state_dict(torch, b)
    both = [k for k in sa if k in sb]
    same_kind = [k for k in both if sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype]
    return {"identical": sum(torch.equal(sa[k], sb[k]) for k in same_kind),
            "changed_shape": len(both) - len(same_kind),
            "changed_values": sum(not torch.equal(sa[k], sb[k]) for k in same_kind),
            "only_in_a": len(set(sa) - set(sb)), "only_in_b": len(set(sb) - set(sa)),
            "union": len(set(sa) | set(sb))}


@pytest.mark.parametrize("a, b", [(M, L), (XS, L)])
def test_counts_match_torch(torch, a, b):
    truth = _torch_counts(torch, a, b)
    data = json.loads(run_cli("diff", "--format", "json", a, b).stdout)
    assert data["schema_version"] == 1
    assert {k: data["summary"][k] for k in truth if k != "union"} == {k: v for k, v in truth.items() if k != "union"}
    text = run_cli("diff", a, b).stdout
    assert (f"tensors: {truth['identical']} identical, {truth['changed_shape']} changed shape or dtype, "
            f"{truth['changed_values']} changed values, {truth['only_in_a']} only in A, "
            f"{truth['only_in_b']} only in B") in text


def test_m_against_l_is_one_class_of_change(torch):
    """Paper: M and L share the backbone; L's three deconv layers are 512 wide, M's 256, and the
    final layer reads from them. So every change is in the head, 256→512, in 4 layers."""
    sm, sl = _torch_state_dict(torch, M), _torch_state_dict(torch, L)
    changed = [k for k in sm if sm[k].shape != sl[k].shape]
    assert {k.split(".")[0] for k in changed} == {"head"}
    result = run_cli("diff", M, L)
    assert result.exit_code == 1
    assert f"  4 head layers: 256→512 ({len(changed)} tensors)" in result.stdout.splitlines()
    assert result.stdout.rstrip().endswith("different architecture (head widths 256,256,256 vs 512,512,512)")


@pytest.mark.parametrize("fmt", ["text", "table", "markdown"])
def test_without_verbose_it_fits_a_screen(fmt):
    out = run_cli("diff", "--format", fmt, XS, L).stdout  # everything differs between XS and L
    lines = out.splitlines()
    assert len(lines) <= 24
    assert sum("only in B" in line or "→" in line for line in lines) >= 10  # the 10 largest changes
    assert any("more (-v lists every tensor)" in line for line in lines)


def test_verbose_lists_every_tensor(torch):
    truth = _torch_counts(torch, XS, L)
    lines = run_cli("diff", "-v", XS, L).stdout.splitlines()
    start = lines.index("every tensor:")
    listed = [line for line in lines[start + 1:] if line.startswith("  ")]
    assert len(listed) == truth["union"]


def test_value_changes_are_ranked_by_difference(tmp_path, torch):
    torch.manual_seed(0)
    base = {f"layer{i}.weight": torch.zeros(8) for i in range(12)}
    moved = {k: v + (i + 1) * 0.5 for i, (k, v) in enumerate(base.items())}
    torch.save({"network": base}, tmp_path / "a.pth")
    torch.save({"network": moved}, tmp_path / "b.pth")
    lines = run_cli("diff", tmp_path / "a.pth", tmp_path / "b.pth").stdout.splitlines()
    ranked = [line.split()[0] for line in lines if "max abs diff" in line and line.startswith("  layer")]
    assert ranked == [f"layer{i}.weight" for i in range(11, 1, -1)]  # the 10 largest, largest first
    assert "  12 layers: different values (12 tensors, max abs diff 6)" in lines
    assert lines[-1] == "same architecture, different weights (12 of 12 tensors differ)"


def test_identical_files():
    result = run_cli("diff", M, DRIVE / "ConvNeXtPose_L_mirror.tar")  # M's weights under an L name
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "identical weights"
