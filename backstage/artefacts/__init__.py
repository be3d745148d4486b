"""What Backstage builds on the workstation and ships to hosts: release tarballs, wheelhouses."""
