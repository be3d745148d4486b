"""A pyinfra 3 deploy of the storefront example, the same steps as bench/ansible/deploy.yml:
releases/<id>/ unpacked from a source archive, a virtualenv per requirements hash from a wheel
directory, migrate and collectstatic as the app's user, the vassal and vhost from templates,
the `current` symlink switched, a health check through nginx, old releases pruned.

The release id is the archive's content hash, so a re-run of the same code unpacks, migrates
and switches nothing (a marker file says a release completed). Run by bench/compare.py:
``pyinfra -y inventory.py bench/pyinfra/deploy.py``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TEMPLATES, archive, data, switch, venv
from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, pip, server

KEEP_RELEASES = 5

d = data()
root = d["app_root"]
bundle, release = archive(d)
release_dir = f"{root}/releases/{release}"
environment = {
    "DJANGO_SETTINGS_MODULE": "storefront.settings",
    "DJANGO_SECRET_KEY": d["secret_key"],
    "DJANGO_ALLOWED_HOSTS": d["domain"],
    "STOREFRONT_DATA_DIR": f"{root}/shared/data",
    "STOREFRONT_STATIC_ROOT": f"{release_dir}/static",
}

for path in (f"{root}/releases", f"{root}/venvs", f"{root}/wheels", release_dir):
    files.directory(name=f"Directory {path}", path=path)
for path in (f"{release_dir}/static", f"{root}/shared/data"):
    files.directory(name=f"Directory {path}", path=path, user="storefront")

files.sync(name="Ship the wheels", src=d["wheels_dir"], dest=f"{root}/wheels")
files.put(name="Ship the requirements", src=d["requirements"], dest=f"{venv(d)}.txt")
pip.venv(name="Virtualenv", path=venv(d), python="/usr/bin/python3")
pip.packages(name="Install from the wheels", requirements=f"{venv(d)}.txt",
             virtualenv=venv(d), extra_install_args=f"--no-index --find-links {root}/wheels")

vhost = files.template(name="The nginx vhost", src=str(TEMPLATES / "vhost.conf.j2"),
                       dest=f"/etc/nginx/sites-enabled/{d['tool']}-storefront.conf", **d)
server.shell(name="Reload nginx", commands=["nginx -s reload"], _if=vhost.did_change)

fresh = not host.get_fact(File, path=f"{release_dir}/.deployed")
if fresh:
    files.put(name="Ship the source archive", src=str(bundle), dest=f"{root}/{release}.tar")
    server.shell(name="Unpack the release",
                 commands=[f"tar -xf {root}/{release}.tar -C {release_dir}",
                           f"rm {root}/{release}.tar"])
    for database in ("users", "greetings"):
        server.shell(name=f"Migrate {database}",
                     commands=[(f"cd {release_dir} && {venv(d)}/bin/python manage.py migrate "
                               f"--database {database} --noinput")],
                     _sudo=True, _sudo_user="storefront", _env=environment)
    server.shell(name="Collect static files",
                 commands=[(f"cd {release_dir} && {venv(d)}/bin/python manage.py collectstatic "
                           "--noinput")],
                 _sudo=True, _sudo_user="storefront", _env=environment)
switch(d, release, fresh)

if fresh:
    files.file(name="Mark the release complete", path=f"{release_dir}/.deployed", touch=True)
server.shell(name="Prune old releases",
             commands=[(f"cd {root}/releases && ls -1t | grep -vx {release} "
                       f"| tail -n +{KEEP_RELEASES} | xargs -r rm -rf --")])
