"""GET /costAllocation/{id}/storage: one cost allocation's part of the storage report, team only."""

from __future__ import annotations

from costalloc_pipeline.billing.prices import load_price_table

HANDLE = 277


def test_a_cost_allocation_storage(api, repo):
    answer = api.get("/costAllocation/1/storage")
    assert answer.status_code == 200
    cost = round(load_price_table(None).storage_month("STANDARD", 3 * HANDLE), 6)
    [genomics] = [b for b in repo_buckets(repo) if b.startswith("test-ca-genomics-")]
    assert answer.json() == {
        "id": "1",
        "name": "genomics",
        "bucket": genomics,
        "activeProjects": 1,
        "objects": 3,
        "bytes": 3 * HANDLE,
        "monthlyCost": cost,
        "storageClasses": [{"storageClass": "STANDARD", "objects": 3, "bytes": 3 * HANDLE, "monthlyCost": cost}],
    }
    assert api.get("/costAllocation/2/storage").json()["storageClasses"] == []


def repo_buckets(repo) -> list[str]:
    return [bucket["Name"] for bucket in repo.s3.list_buckets()["Buckets"]]


def test_unknown_and_malformed_ids(api, repo):
    unknown = api.get("/costAllocation/99/storage")
    assert (unknown.status_code, unknown.json()) == (404, {"reason": "cost allocation 99 does not exist"})
    for bad in ("0", "syn1", "1" * 19, "-3"):
        refused = api.get(f"/costAllocation/{bad}/storage")
        assert refused.status_code == 400 and "cost allocation id" in refused.json()["reason"], bad
    assert api.get("/costAllocation/1/storage?verbose=1").status_code == 400


def test_team_only(api, repo):
    assert api.get("/costAllocation/1/storage", headers={"Authorization": "Bearer cat_forged"}).status_code == 401
    assert api.get("/costAllocation/1/storage", headers={"Authorization": ""}).status_code == 401


def test_the_document_describes_it(api):
    operation = api.get("/openapi.json").json()["paths"]["/costAllocation/{cost_allocation_id}/storage"]["get"]
    assert sorted(operation["responses"]) == ["200", "400", "401", "403", "404"]
    [parameter] = operation["parameters"]
    assert parameter["schema"]["pattern"] == "^0*[1-9][0-9]{0,17}$"
