"""Sample gift-card records shared by the gift-card tests: a mall, a tenant, a program, a distributor."""

from ops_pipeline.giftcards import kinds, records

VPA = "beanthere.g12@okhdfc"
ACCOUNT = "50100123456789"
MALL = {"principal_id": "MALL-ORION", "kind": "mall", "name": "Orion Mall"}
TENANT = {
    "principal_id": "P-CAFE-01", "kind": "tenant", "mall_id": "MALL-ORION", "name": "Bean There Cafe",
    "unit": "G-12", "upi_vpas": [VPA, "beanthere@ybl"],
    "bank_account": {"account_holder": "Bean There Cafe Pvt Ltd", "account_number": ACCOUNT,
                     "ifsc": "HDFC0001234"},
    "contact": {"name": "Asha Rao", "email": "asha@beanthere.example", "phone": "+919812345678"},
    "terms": {"commission_percent": "2.5", "discount_percent": "1"},
    "marketing": [{"title": "Menu", "url": "https://beanthere.example/menu.pdf"}],
}
PROGRAM = {
    "program_id": "GC-ORION-FESTIVE", "name": "Orion Festive Gift Card", "principal_ids": ["P-CAFE-01"],
    "pricing": {"denominations": ["500.00", "1000.00"]}, "validity_days": 365,
    "commission_rules": [{"kind": "percent", "percent": "3"}],
    "artworks": [{"title": "Front", "url": "https://orion.example/front.png"}],
    "email_message": "Your Orion gift card", "terms_and_conditions": "Not redeemable for cash.",
}
DISTRIBUTOR = {"party_id": "D-GIFTLY", "kind": "distributor", "name": "Giftly Distribution LLP",
               "bank_account": {"account_holder": "Giftly", "account_number": "000405012345",
                                "ifsc": "ICIC0000456"}}


def seed(ws) -> None:
    for kind, data in ((kinds.PRINCIPALS, MALL), (kinds.PRINCIPALS, TENANT), (kinds.PROGRAMS, PROGRAM),
                       (kinds.PARTIES, DISTRIBUTOR)):
        records.create(ws, kind, data, "ops:asha")
