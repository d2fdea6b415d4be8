"""The GraphiQL page uses the service's own assets when they are there, the CDN's pinned ones otherwise."""

from __future__ import annotations

import re
from pathlib import Path

from app.graphiql import ASSET_FILES, assets_present, page


def test_local_assets_are_used_only_when_all_are_there(tmp_path: Path) -> None:
    assert not assets_present(tmp_path)
    for name in list(ASSET_FILES)[:-1]:
        (tmp_path / name).write_text("x")
    assert not assets_present(tmp_path)
    (tmp_path / list(ASSET_FILES)[-1]).write_text("x")
    assert assets_present(tmp_path)


def test_the_page_loads_every_asset_from_the_service_or_else_from_the_cdn() -> None:
    local = page(local_assets=True)
    remote = page(local_assets=False)
    for name, (cdn_path, integrity) in ASSET_FILES.items():
        assert f'"/graphiql/{name}" integrity="{integrity}"' in local
        assert f'"https://unpkg.com/{cdn_path}" integrity="{integrity}"' in remote
    assert "unpkg.com" not in local
    assert not re.search(r'(src|href)="https?://', local)
    assert "graphqlWs.createClient" in local and "connectionParams" in local
