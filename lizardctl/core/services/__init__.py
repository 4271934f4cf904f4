"""Services: the business logic, one class per area, each given a UnitOfWork factory."""
