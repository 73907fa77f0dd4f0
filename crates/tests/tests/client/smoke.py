"""What an integrator writes with a client generated from docs/openapi.json by
openapi-python-client: read published results without a token, then, as an admin, create a
cycle, upload its sample, publish a cycle and download a certificate's PDF."""

import os
import sys
import time

sys.path.insert(0, os.environ["CLIENT_PARENT"])

from kepatuhan_client import AuthenticatedClient, Client  # noqa: E402
from kepatuhan_client.api.certificates import get_certificate_pdf, list_certificates  # noqa: E402
from kepatuhan_client.api.cycles import bulk_upsert_sample, create_cycle, transition_cycle  # noqa: E402
from kepatuhan_client.api.results import list_entity_results  # noqa: E402
from kepatuhan_client.models import (  # noqa: E402
    BulkOutcome,
    Cycle,
    CycleState,
    NewCycle,
    PageEntityResultView,
    SampleInput,
    Transition,
    TransitionOutcome,
)

base = os.environ["BASE_URL"]

# Anyone: the published 2024 results, no token.
public = Client(base_url=base)
page = list_entity_results.sync(year=2024, client=public)
assert isinstance(page, PageEntityResultView), page
assert page.items, "published results are listed"

admin = AuthenticatedClient(base_url=base, token=os.environ["ADMIN_TOKEN"])
cycle = create_cycle.sync(client=admin, body=NewCycle(year=2031))
assert isinstance(cycle, Cycle) and cycle.year == 2031, cycle
outcome = bulk_upsert_sample.sync(
    year=2031,
    client=admin,
    body=[SampleInput(entity_code="19.01", unit_name="Dinas Kependudukan dan Pencatatan Sipil")],
)
assert isinstance(outcome, BulkOutcome) and outcome.created == 1, outcome

for state in (CycleState.VERIFYING, CycleState.PUBLISHED):
    moved = transition_cycle.sync(year=2025, client=admin, body=Transition(to=state))
    assert isinstance(moved, TransitionOutcome), moved

deadline = time.time() + 60
certificates = []
while not certificates:
    assert time.time() < deadline, "no certificate within a minute"
    certificates = list_certificates.sync(year=2025, client=admin) or []
    time.sleep(0.2)
pdf = get_certificate_pdf.sync_detailed(code=certificates[0].code, client=admin)
assert pdf.status_code == 200, pdf
assert pdf.content.startswith(b"%PDF"), pdf.content[:20]
print(f"ok: {len(page.items)} published results, {len(certificates)} certificates, PDF of {len(pdf.content)} bytes")
