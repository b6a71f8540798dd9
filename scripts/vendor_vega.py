"""Build `.dvc/plots/offline.html`: DVC's plots page template with Vega inlined, for offline nodes.

`dvc plots show` / `dvc plots diff` write `dvc_plots/index.html`, whose default template loads
vega, vega-lite and vega-embed from a CDN: on a cluster node without internet the page stays
blank. DVC takes another page template (`plots.html_template` in `.dvc/config`, or
`--html-template`); this one inlines the three libraries, so the page works from any disk, any
copy, any browser, with no network. The versions are the ones DVC's own renderer would load
(read from `dvc_render.vega.VegaRenderer.SCRIPTS`), so the charts look the same as online.

The JavaScript comes from the npm registry's packages (`npm pack`, the minified `build/*.min.js`),
each under the BSD-3-Clause licence, whose notice the template carries. The result is committed
(~0.8 MB); re-run this script only to follow a DVC upgrade:

    python scripts/vendor_vega.py                  # npm pack the versions DVC uses, write the template
    python scripts/vendor_vega.py --tarballs DIR   # from already downloaded vega*.tgz files
    python scripts/vendor_vega.py --check          # exit 1 if the template is not for DVC's versions
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / ".dvc" / "plots" / "offline.html"
PACKAGES = ("vega", "vega-lite", "vega-embed")
BUNDLES = {"vega": "package/build/vega.min.js", "vega-lite": "package/build/vega-lite.min.js",
           "vega-embed": "package/build/vega-embed.min.js"}

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>DVC Plot</title>
    <!-- lmlab offline template (scripts/vendor_vega.py): {versions} inlined below from their npm
         packages, so this page draws its plots without network access. -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def dvc_versions() -> dict[str, str]:
    """The vega/vega-lite/vega-embed versions DVC's HTML renderer loads from the CDN."""
    from dvc_render.vega import VegaRenderer

    found = dict(re.findall(r"/npm/(vega(?:-lite|-embed)?)@([0-9][^\"'/]*)", VegaRenderer.SCRIPTS))
    missing = [p for p in PACKAGES if p not in found]
    if missing:
        raise SystemExit(f"dvc_render no longer names {missing} in VegaRenderer.SCRIPTS: update this script")
    return {p: found[p] for p in PACKAGES}


def template_versions(path: Path = TEMPLATE) -> dict[str, str]:
    """The versions an existing template says it inlines (``{}`` if there is none)."""
    if not path.exists():
        return {}
    return dict(re.findall(r"(vega(?:-lite|-embed)?)@([0-9][^\s,:]*)", path.read_text(encoding="utf-8")[:2000]))


def npm_pack(versions: dict[str, str], into: Path) -> None:
    specs = [f"{p}@{v}" for p, v in versions.items()]
    subprocess.run(["npm", "pack", "--silent", *specs], cwd=into, check=True, stdout=subprocess.DEVNULL)


def _member(tarball: Path, name: str) -> str:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(name)
        if member is None:
            raise SystemExit(f"{tarball} has no {name}")
        return member.read().decode("utf-8")


def build(versions: dict[str, str], tarballs: Path) -> str:
    blocks = []
    for package, version in versions.items():
        tarball = tarballs / f"{package}-{version}.tgz"
        if not tarball.exists():
            raise SystemExit(f"missing {tarball} (npm pack {package}@{version})")
        code, licence = _member(tarball, BUNDLES[package]), _member(tarball, "package/LICENSE")
        if "</script" in code.lower():
            raise SystemExit(f"{package}'s bundle contains '</script': it cannot be inlined as is")
        blocks.append(f"    <!-- {package}@{version}, licence:\n{licence.strip().replace('--', '- -')}\n    -->\n"
                      f"    <script>{code.strip()}</script>")
    label = ", ".join(f"{p}@{v}" for p, v in versions.items())
    return PAGE.format(versions=label, scripts="\n".join(blocks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tarballs", type=Path, default=None, help="directory with <package>-<version>.tgz")
    parser.add_argument("--out", type=Path, default=TEMPLATE)
    parser.add_argument("--check", action="store_true", help="only check the template's versions against DVC's")
    args = parser.parse_args(argv)
    versions = dvc_versions()
    if args.check:
        have = template_versions(args.out)
        if have != versions:
            print(f"{args.out}: inlines {have or 'nothing'}, DVC uses {versions}; run scripts/vendor_vega.py",
                  file=sys.stderr)
            return 1
        print(f"{args.out}: {', '.join(f'{p}@{v}' for p, v in versions.items())} (as DVC)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tarballs = args.tarballs or Path(tmp)
        if args.tarballs is None:
            npm_pack(versions, tarballs)
        page = build(versions, tarballs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({len(page.encode()) / 1e6:.2f} MB): {', '.join(f'{p}@{v}' for p, v in versions.items())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
