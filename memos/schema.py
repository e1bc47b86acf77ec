"""Every table the migrations manage: the MemCube store's and the semantic cache's."""

from memos.cache import models as cache_tables
from memos.memcube.models import Base

metadata = Base.metadata

__all__ = ["cache_tables", "metadata"]
