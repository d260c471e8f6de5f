chmod 4755 ctx/suid
echo g > ctx/sgid && chmod 2711 ctx/sgid
mkdir -p ctx/sticky && chmod 1777 ctx/sticky
ln ctx/plain ctx/hard1
ln ctx/plain ctx/hard2
ln -s plain ctx/sym
ln -s /etc/passwd ctx/abs-sym
chmod 600 ctx/plain
