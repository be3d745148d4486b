pytest_plugins = ["tests.fleet_fixtures", "tests.producer_services"]
