# Chain area: install the pinned Solidity compiler (npm `solc`) and the local node
# (npm `@foundry-rs/anvil-linux-amd64`) from contracts/package-lock.json. The chain tests
# then recompile the contracts and fail if the committed artifacts differ, and run every
# lifecycle test on anvil as well as on the embedded py-evm chain.
echo "chain: npm ci in contracts/ (solc + anvil, versions pinned in package-lock.json)"
(cd contracts && npm ci --no-audit --no-fund --loglevel=error)
test -x contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --version | head -1
# Installed-package tests find anvil through the lookup's environment variable (the
# source-checkout path is not visible from a non-editable install).
export CIPHERFUSE_ANVIL="$PWD/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
