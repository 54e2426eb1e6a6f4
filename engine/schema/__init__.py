"""The household record: model, validation, facts the rules see, vocabulary, money and masking."""
