"""The nested platform: pvgen commands run where /dev/kvm is a real hardware-virtualization KVM (docs/nested.md)."""
