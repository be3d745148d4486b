pytest_plugins = ["tests.support.fleet_fixtures"]
