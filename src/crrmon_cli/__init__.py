"""crrmon: the operator's command-line tool for CRR Monitor."""
