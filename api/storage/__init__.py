"""Storage: the database, tables, repository, migrations, id hashing and the group-commit writer."""
