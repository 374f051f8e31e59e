# Shared by the scripts in scripts/image/ (sourced, not run).
# Where the image tooling keeps its state, outside the repository:
#   IMAGE_CACHE    cache base (default ~/.cache/subscription-upserter/image): stand-in rootfs
#                  archives, buildah's storage (vfs driver) and the build outputs.
#   IMAGE_OUT      build outputs: SBOM, image id, size (default $IMAGE_CACHE/out).
IMAGE_CACHE=${IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/subscription-upserter/image}
IMAGE_OUT=${IMAGE_OUT:-$IMAGE_CACHE/out}
# The stand-ins for python:3.11.14-slim-bookworm and python:3.11.14-bookworm (Debian's own
# Python 3.11 on bookworm): see scripts/image/stand-in-base.
STAND_IN_IMAGE=localhost/stand-in/python:3.11-slim-bookworm
STAND_IN_BUILD_IMAGE=localhost/stand-in/python:3.11-bookworm

# buildah with this project's own storage (vfs: no overlay or fuse needed) and chroot
# isolation (no OCI runtime needed), so it runs in containers and CI sandboxes as root.
image_buildah() {
  buildah --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver vfs "$@"
}

image_exists() {
  image_buildah inspect --type image "$1" >/dev/null 2>&1
}

image_label() {  # image_label IMAGE KEY: the label's value, empty when unset
  image_buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1"
}
