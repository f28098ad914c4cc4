"""$subsumes over the device classes codes denote: the rule on concepts whose devices are of nested
classes (the graph's device codes each denote a most specific kind, so the HL7-format cases can show
only the same-kind case)."""

from __future__ import annotations

from server.fhir.codesystems import CodeSystem
from server.fhir.concepts import MC, Concept
from server.fhir.subsumes import relation

HCPCS = CodeSystem("https://w3id.org/medcode/id/hcpcs", "hcpcs", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                   "HCPCSLevelII", "HCPCS Level II", "2026", "test", None, "fragment")
PUMP = {MC + "MedicalProduct", MC + "DrugDeliveryDevice", MC + "InfusionPump", MC + "ImplantableInfusionPump"}


def device_code(code: str, classes: set[str]) -> Concept:
    return Concept(HCPCS, code, device_classes=classes | {"http://www.w3.org/2002/07/owl#NamedIndividual"})


def test_a_broader_device_kind_subsumes_a_narrower_one():
    any_pump = device_code("X0001", PUMP)
    programmable = device_code("X0002", PUMP | {MC + "ProgrammableImplantablePump"})
    assert relation(any_pump, programmable) == "subsumes"
    assert relation(programmable, any_pump) == "subsumed-by"


def test_same_or_unrelated_device_kinds_do_not_subsume():
    programmable = PUMP | {MC + "ProgrammableImplantablePump"}
    assert relation(device_code("E0783", programmable), device_code("C1772", programmable)) == "not-subsumed"
    reservoir = {MC + "MedicalProduct", MC + "DrugDeliveryDevice", MC + "SubcutaneousReservoir"}
    assert relation(device_code("C1788", reservoir), device_code("E0783", programmable)) == "not-subsumed"
    assert relation(device_code("E0783", programmable), device_code("E0783", programmable)) == "equivalent"
    assert relation(device_code("A0001", set()), device_code("A0002", set())) == "not-subsumed"
