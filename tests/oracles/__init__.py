"""Independent answers the tests compare streamreg with: NIST certified values, exact rationals."""
