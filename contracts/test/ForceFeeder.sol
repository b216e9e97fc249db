// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ForceFeeder: sends ETH to a contract without calling it (tests only)
/// @notice Created with value, it self-destructs in its constructor and so moves its balance to
/// `target` without running any of the target's code (EIP-6780 still deletes a contract that
/// self-destructs in the transaction that created it).
contract ForceFeeder {
    /// @notice Force `msg.value` into `target`.
    /// @param target The receiver.
    constructor(address payable target) payable {
        selfdestruct(target);
    }
}
