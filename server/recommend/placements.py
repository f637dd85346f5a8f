"""Where answers are shown (`GET /v1/recommendations?placement=`), and the scopes merchandising
rules name: those, plus the similar-items and trending endpoints."""

PLACEMENTS = ("home", "product", "cart", "category", "search", "checkout", "account", "email", "buy_again")
RULE_PLACEMENTS = (*PLACEMENTS, "similar", "trending")
