pytest_plugins = ["tests.support.fleet_fixtures", "tests.support.producer_services"]
