// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title MinimalAnchor: the cheapest useful state change, a floor for chain benchmarks
/// @notice Each call stores one 32-byte digest under its sender and announces it. The benchmark
/// `bench/bench_chain.py` sends the reference task life cycle's transactions (same senders, same
/// order, same count) to this contract, so its run time is what the chain and the signing client
/// cost per transaction, without any task logic.
contract MinimalAnchor {
    /// @notice The latest digest each account anchored.
    mapping(address account => bytes32 digest) public latest;

    /// @notice `account` anchored `digest`.
    event Anchored(address indexed account, bytes32 digest);

    /// @notice Anchor a digest.
    /// @param digest Any 32-byte value.
    function anchor(bytes32 digest) external {
        latest[msg.sender] = digest;
        emit Anchored(msg.sender, digest);
    }
}
