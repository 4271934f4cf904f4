"""The database layer, all of it: the open ``Database`` (``database.py``), the engine
factory (``engine.py``), the typed models (``models.py``), migrations run from code
(``migrate.py``) and the ``UnitOfWork`` services are given (``uow.py``)."""
