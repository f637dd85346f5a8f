"""The worker's mirror: a view built off the event loop from an older copy catches up on first
use, one too far behind is rebuilt, knows() covers the model and the catalog."""

from collections import deque

import pytest

from models.catalog import ItemRecord
from server.catalog.live import LiveCatalog
from server.catalog.view import ItemsView
from tests.server.small_model import small_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


def test_a_view_built_from_an_older_copy_catches_up(model):
    catalog = LiveCatalog(store=None, refresh_s=1.0)  # the store is not used by these calls
    catalog.apply({"i1": ItemRecord(in_stock=False)})
    view = catalog.prepare(model)  # as the model loader's thread does
    catalog.apply({"i2": ItemRecord(in_stock=False), "new": ItemRecord(category="c1")})
    catalog.apply({"i1": None})
    assert catalog.view(model) is view
    assert view.available[1] and not view.available[2] and view.index_of("new") is not None
    assert catalog.knows("new") and catalog.knows("i1999") and not catalog.knows("nope")
    # A copy older than the changes remembered: rebuilt from the mirror instead.
    far = LiveCatalog(store=None, refresh_s=1.0)
    far._recent = deque(maxlen=2)
    far.apply({"i0": ItemRecord(price=0.0)})
    far._views[model.version] = stale = ItemsView(model, {}, seq=0)  # copied before that change
    for n in range(1, 5):
        far.apply({f"i{n}": ItemRecord(price=float(n))})
    assert stale.seq == 0  # built off the loop: not updated in place
    fresh = far.view(model)
    assert fresh is not stale and fresh.price[4] == 4.0 and fresh.seq == far.seq
