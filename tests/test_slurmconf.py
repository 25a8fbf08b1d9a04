"""slurm.conf reading: comments, continuations, quoting, Include, case-insensitive keys,
and the derived settings with Slurm's defaults."""
import pytest

from slurmauth_fast.slurmconf import SlurmConfError, conf_get_opt_str, read_slurm_conf


def write(tmp_path, text, name="slurm.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_parsing_rules(tmp_path):
    write(tmp_path, "HashPlugin=hash/sha3\n", "extra.conf")
    conf = read_slurm_conf(write(tmp_path, """# a comment
ClusterName=c1   # trailing comment
authtype=auth/slurm
AuthInfo="use_client_ids,ttl=30"
SlurmctldParameters=rl_enable,\\
rl_bucket_size=5
NodeName=n[1-4] CPUs=2 State=UNKNOWN
PartitionName=p Nodes=n[1-4]
Comment=has\\#hash
ClusterName=c2
Include extra.conf
"""))
    assert conf.cluster_name == "c2"                  # a later value replaces an earlier one
    assert conf.auth_type == "auth/slurm"
    assert conf.auth_info == "use_client_ids,ttl=30" and conf.use_client_ids
    assert conf.slurmctld_parameters == "rl_enable,rl_bucket_size=5"
    assert conf.get("comment") == "has#hash"
    assert [r.get("nodename") for r in conf.records] == ["n[1-4]", None] and len(conf.records) == 2
    assert conf.hash_plugins == ("sha3", "k12") and conf.hash_types == {2, 4}


def test_defaults(tmp_path):
    conf = read_slurm_conf(write(tmp_path, "ClusterName=c\n"))
    assert conf.auth_type == "auth/munge" and conf.auth_alt_types == ()
    assert conf.hash_plugins == ("k12",) and conf.hash_types == {2}
    assert not conf.use_client_ids and not conf.block_null_hash and not conf.block_zero_hash
    assert conf.slurm_user_uid == 0 and conf.slurmctld_port == 6817


def test_communication_parameters_and_alt_types(tmp_path):
    conf = read_slurm_conf(write(tmp_path, "CommunicationParameters=Block_Null_Hash,block_zero_hash\n"
                                           "AuthAltTypes=auth/jwt\nSlurmctldPort=7000-7003\n"))
    assert conf.block_null_hash and conf.block_zero_hash
    assert conf.auth_alt_types == ("auth/jwt",) and conf.slurmctld_port == 7000


@pytest.mark.parametrize("text,match", [
    ("ClusterName\n", "Key=Value"),
    ('AuthInfo="open\n', "unterminated"),
    ("Include nothing-here-*.conf\n", "matches no file"),
    ("HashPlugin=hash/md5\n", "unknown hash plugin"),
])
def test_errors(tmp_path, text, match):
    with pytest.raises(SlurmConfError, match=match):
        read_slurm_conf(write(tmp_path, text)).hash_plugins


def test_include_loop_is_bounded(tmp_path):
    write(tmp_path, "Include slurm.conf\n")
    with pytest.raises(SlurmConfError, match="nested"):
        read_slurm_conf(str(tmp_path / "slurm.conf"))


def test_missing_file(tmp_path):
    with pytest.raises(SlurmConfError, match="cannot read"):
        read_slurm_conf(str(tmp_path / "absent.conf"))


def test_conf_get_opt_str():
    assert conf_get_opt_str("a=1,rl_x=5,rl_x=6", "rl_x=") == "5"
    assert conf_get_opt_str("rl_x=", "rl_x=") is None
    assert conf_get_opt_str(None, "rl_x=") is None
    assert conf_get_opt_str("RL_X=5", "rl_x=") is None        # case-sensitive, as in Slurm
