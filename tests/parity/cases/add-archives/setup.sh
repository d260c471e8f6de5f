mkdir -p src/d && echo in-archive > src/d/f && chmod 750 src/d && ln -s f src/d/l
tar --numeric-owner --owner=7 --group=8 -C src -cf a.tar .
gzip -kn a.tar && bzip2 -k a.tar && xz -k a.tar && zstd -q a.tar -o a.tar.zst
echo not-a-tar | gzip -n > plain.gz
rm -rf src
