"""The book: positions grouped into strategies, and their aggregated risk."""
