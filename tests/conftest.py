pytest_plugins = ["tests.fleet_fixtures"]
