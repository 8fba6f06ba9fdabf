"""Auto fund-out: merchants' scheduled payouts that keep a minimum balance, and manual cash-out."""
